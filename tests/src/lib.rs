//! Harness of smolder's end-to-end tests: runs the real `smolder` binary on
//! ephemeral loopback ports, reads back the addresses it prints, and talks to it
//! over its public interfaces.
//!
//! The binary is `target/debug/smolder` next to the test executable (override
//! with `SMOLDER_BIN`); `scripts/test.sh` builds it before the tests run.

pub mod cluster;
pub mod s3;
pub mod sink;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The path of the smolder binary under test.
pub fn smolder_bin() -> PathBuf {
    if let Ok(bin) = std::env::var("SMOLDER_BIN") {
        return PathBuf::from(bin);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> → target/debug/smolder
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|dir| dir.join("smolder"))
        .expect("target directory");
    assert!(
        bin.exists(),
        "{} not found: build it first with `cargo build -p smolder` (scripts/test.sh does), \
         or point SMOLDER_BIN at it",
        bin.display()
    );
    bin
}

/// The number of spans in a trace export.
pub fn span_count(
    request: &opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest,
) -> u64 {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len() as u64)
        .sum()
}

pub use smolder_sample_data::fixtures::kv;

/// The repository root.
pub fn repo_root() -> PathBuf {
    // At run time first: a build cache shared by two checkouts may hold this
    // crate compiled in the other one.
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A running `smolder serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// OTLP/gRPC address.
    pub otlp_grpc: SocketAddr,
    /// OTLP/HTTP address.
    pub otlp_http: SocketAddr,
    /// HTTP API address.
    pub http: SocketAddr,
    data_dir: PathBuf,
    /// Deletes the data directory when the server is dropped, if it made it.
    _temp: Option<tempfile::TempDir>,
    extra: Vec<String>,
    env: Vec<(String, String)>,
    /// The S3 server holding the files with `SMOLDER_TEST_STORAGE=s3`.
    _s3: Option<std::sync::Arc<s3::S3Server>>,
}

impl Server {
    /// Starts `smolder serve` on loopback port 0 for every listener, with
    /// `extra` arguments appended.
    pub fn start(extra: &[&str]) -> Self {
        Self::start_with_env(extra, &[])
    }

    /// Like [`Server::start`], with environment variables set for the server.
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Self {
        let temp = tempfile::tempdir().expect("temporary data dir");
        let mut server = Self::launch(temp.path(), extra, env);
        server._temp = Some(temp);
        server
    }

    /// Like [`Server::start`], with the data directory `data_dir` (which the
    /// caller owns).
    pub fn start_in(data_dir: &std::path::Path, extra: &[&str]) -> Self {
        Self::launch(data_dir, extra, &[])
    }

    fn launch(data_dir: &std::path::Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let mut env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        // The suite again with the files in a bucket: one S3 server per
        // data directory, so that a restart, or another server started on
        // the same directory, finds the same files.
        let s3 = (std::env::var("SMOLDER_TEST_STORAGE").as_deref() == Ok("s3")
            && !extra.iter().any(|a| a == "--storage-url"))
        .then(|| {
            static BUCKETS: std::sync::Mutex<Vec<(PathBuf, std::sync::Arc<s3::S3Server>)>> =
                std::sync::Mutex::new(Vec::new());
            let mut buckets = BUCKETS.lock().unwrap_or_else(|e| e.into_inner());
            let s3 = match buckets.iter().find(|(dir, _)| dir == data_dir) {
                Some((_, s3)) => std::sync::Arc::clone(s3),
                None => {
                    let s3 = std::sync::Arc::new(s3::S3Server::start());
                    buckets.push((data_dir.to_path_buf(), std::sync::Arc::clone(&s3)));
                    s3
                }
            };
            extra.extend(["--storage-url".to_string(), s3.url("test")]);
            env.extend(s3.env().into_iter().map(|(k, v)| (k.to_string(), v)));
            s3
        });
        let (child, [otlp_grpc, otlp_http, http]) = spawn(data_dir, &extra, &env, None);
        Self {
            child,
            otlp_grpc,
            otlp_http,
            http,
            data_dir: data_dir.to_path_buf(),
            _temp: None,
            extra,
            env,
            _s3: s3,
        }
    }

    /// Kills the server with SIGKILL — a crash, no graceful shutdown — and
    /// starts it again on the same data directory (on new ports).
    pub fn crash_and_restart(&mut self) {
        self.kill();
        self.restart();
    }

    /// Kills the server with SIGKILL and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same data directory (on new ports),
    /// stopping it first (SIGTERM) if it is still running.
    pub fn restart(&mut self) {
        if self.is_running() {
            self.stop();
        }
        let (child, [otlp_grpc, otlp_http, http]) =
            spawn(&self.data_dir, &self.extra, &self.env, None);
        self.child = child;
        self.otlp_grpc = otlp_grpc;
        self.otlp_http = otlp_http;
        self.http = http;
    }

    /// Starts the server again on the same data directory and the same
    /// ports, so that clients (such as a running `smolder loadgen`) reconnect
    /// to it.
    pub fn restart_on_same_ports(&mut self) {
        let addrs = [self.otlp_grpc, self.otlp_http, self.http];
        let (child, _) = spawn(&self.data_dir, &self.extra, &self.env, Some(addrs));
        self.child = child;
    }

    /// Stops the server the way an operator does (SIGTERM: graceful
    /// shutdown) and waits for it to exit; returns whether it exited cleanly.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().is_ok_and(|s| s.success())
    }

    /// The server's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.data_dir
    }

    /// Base URL of the OTLP/HTTP receiver.
    pub fn otlp_http_url(&self) -> String {
        format!("http://{}", self.otlp_http)
    }

    /// Base URL of the OTLP/gRPC receiver.
    pub fn otlp_grpc_url(&self) -> String {
        format!("http://{}", self.otlp_grpc)
    }

    /// Base URL of the HTTP API.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Runs a SQL query and returns the JSON answer; panics on a non-200 answer.
    pub fn sql(&self, sql: &str) -> serde_json::Value {
        let (status, body) = self.sql_status(sql);
        assert_eq!(status, 200, "query {sql:?} failed: {body}");
        body
    }

    /// `PUT /api/v1/slos/{id}` with an SLO's YAML; the status and the JSON
    /// answer (null when it is not JSON).
    pub fn put_slo(&self, id: &str, yaml: &str) -> (u16, serde_json::Value) {
        let (status, answer) = http_request(
            self.http,
            "PUT",
            &format!("/api/v1/slos/{id}"),
            &[("content-type", "application/yaml")],
            yaml.as_bytes(),
        );
        (status, serde_json::from_str(&answer).unwrap_or_default())
    }

    /// Runs a SQL query and returns the HTTP status and JSON body.
    pub fn sql_status(&self, sql: &str) -> (u16, serde_json::Value) {
        let body = serde_json::json!({ "sql": sql }).to_string();
        let (status, text) = http_post(
            self.http,
            "/api/v1/sql",
            "application/json",
            body.as_bytes(),
        );
        let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad JSON {text:?}: {e}"));
        (status, json)
    }

    /// The single value of a one-row, one-column query.
    pub fn scalar(&self, sql: &str) -> serde_json::Value {
        let answer = self.sql(sql);
        answer["rows"][0][0].clone()
    }

    /// Polls `sql` until its scalar equals `want` or 30 s pass; returns the last
    /// value seen. Exporters flush asynchronously, so counts settle shortly after.
    pub fn wait_for_scalar(&self, sql: &str, want: &serde_json::Value) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.scalar(sql);
            if &got == want || std::time::Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `smolder serve` as the tests start it: it dies with the thread that
/// started it even when the test process is killed (a timeout, ^C) and
/// cannot run its destructors; `RUST_LOG` passes on (default `warn`); its
/// stdout is piped for [`listening`].
pub fn serve_command() -> Command {
    let mut command = Command::new("setpriv");
    command
        .args(["--pdeathsig", "KILL", "--"])
        .arg(smolder_bin())
        .arg("serve")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    command
}

/// Spawns `smolder serve` and reads the gRPC, OTLP/HTTP and API addresses it
/// prints.
fn spawn(
    data_dir: &std::path::Path,
    extra: &[String],
    env: &[(String, String)],
    addrs: Option<[SocketAddr; 3]>,
) -> (Child, [SocketAddr; 3]) {
    let [grpc, otlp_http, http] = addrs.map_or_else(
        || {
            [
                "127.0.0.1:0".to_string(),
                "127.0.0.1:0".into(),
                "127.0.0.1:0".into(),
            ]
        },
        |a| a.map(|a| a.to_string()),
    );
    let mut child = serve_command()
        .args(["--otlp-grpc-addr", &grpc])
        .args(["--otlp-http-addr", &otlp_http])
        .args(["--http-addr", &http])
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        // The canned fixtures are timestamped in 2023: keep everything, so
        // that only the tests about retention meet it (they pass flags,
        // which win over these variables).
        .env("SMOLDER_RETENTION_TRACES", "36500d")
        .env("SMOLDER_RETENTION_LOGS", "36500d")
        .env("SMOLDER_RETENTION_METRICS", "36500d")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .spawn()
        .expect("spawning smolder serve");
    let found = listening(&mut child, &["otlp_grpc", "otlp_http", "http"]);
    (
        child,
        [found["otlp_grpc"], found["otlp_http"], found["http"]],
    )
}

/// Reads the `listening NAME=ADDR` lines `smolder serve` prints on stdout
/// until every one of `names` has come (others are kept too); keeps
/// draining stdout afterwards so that the child never blocks on it.
pub fn listening(
    child: &mut Child,
    names: &[&str],
) -> std::collections::HashMap<String, SocketAddr> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut found = std::collections::HashMap::new();
    while !names.iter().all(|n| found.contains_key(*n)) {
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!("smolder serve did not print its listening addresses {names:?} within 60 s");
            }
        };
        let Some(rest) = line.strip_prefix("listening ") else {
            continue;
        };
        let (name, addr) = rest.split_once('=').expect("listening name=addr");
        found.insert(name.to_string(), addr.parse().expect("socket address"));
    }
    found
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `smolder loadgen` with `args` in the background, with a JSON
/// report on stdout ([`loadgen_report`]).
pub fn loadgen(args: &[&str]) -> Child {
    Command::new(smolder_bin())
        .arg("loadgen")
        .args(args)
        .arg("--json")
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawning smolder loadgen")
}

/// Waits for a [`loadgen`] run and returns its JSON report; panics if it
/// failed.
pub fn loadgen_report(child: Child) -> serde_json::Value {
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "loadgen failed");
    serde_json::from_slice(&output.stdout).expect("loadgen JSON report")
}

/// A minimal blocking HTTP/1.1 POST on loopback; returns status and body.
/// Used by the harness so that it depends on no async runtime.
pub fn http_post(addr: SocketAddr, path: &str, content_type: &str, body: &[u8]) -> (u16, String) {
    http_request(addr, "POST", path, &[("content-type", content_type)], body)
}

/// A minimal blocking HTTP/1.1 request; returns status and body as text.
pub fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let (status, _, body) = http_bytes(addr, method, path, headers, body);
    (status, String::from_utf8_lossy(&body).to_string())
}

/// A minimal blocking HTTP/1.1 request; returns the status, the response's
/// head (status line and headers) and the body's bytes.
pub fn http_bytes(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    // The server's address is its name unless the test sends another.
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        request.push_str(&format!("host: {addr}\r\n"));
    }
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("HTTP response head");
    let head = String::from_utf8_lossy(&response[..split]).to_string();
    let rest = &response[split + 4..];
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .expect("status")
        .parse()
        .expect("numeric status");
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    (status, head, body)
}

fn dechunk(mut s: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = s.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&s[..line_end]);
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        let rest = &s[line_end + 2..];
        out.extend_from_slice(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

/// The Python interpreter of the virtual environment `name` (`.venv-otel`,
/// `.venv-otel-json`) that `scripts/test.sh` creates; panics with what to run
/// when it is missing.
pub fn python(name: &str) -> PathBuf {
    let python = repo_root().join(name).join("bin").join("python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test.sh, which installs the OpenTelemetry Python SDK \
         and exporters from PyPI into {name}",
        python.display()
    );
    python
}

/// tests/python/export.py (the OpenTelemetry Python SDK's exporters) in the
/// virtual environment `venv`, sending to `endpoint` over `protocol` with
/// the run id `run_id`; the caller adds variables and runs it.
pub fn python_export_command(venv: &str, endpoint: &str, protocol: &str, run_id: &str) -> Command {
    let mut command = Command::new(python(venv));
    command
        .arg(repo_root().join("tests/python/export.py"))
        .args([
            "--protocol",
            protocol,
            "--endpoint",
            endpoint,
            "--run-id",
            run_id,
        ]);
    command
}

/// `smolder token create --data-dir DIR --tenant T --scope S`: the token, which
/// the command prints alone on its last line.
pub fn create_token(data_dir: &std::path::Path, tenant: &str, scope: &str) -> String {
    let out = std::process::Command::new(smolder_bin())
        .args(["token", "create", "--data-dir"])
        .arg(data_dir)
        .args(["--tenant", tenant, "--scope", scope])
        .output()
        .expect("running smolder token create");
    assert!(out.status.success(), "smolder token create: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Now, in Unix nanoseconds.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

/// `n` server spans of `service`, the first `errors` failed on route `/pay`,
/// the rest spread over `/pay`, `/cart` and `/home`, in the last seconds.
pub fn route_spans(service: &str, n: usize, errors: usize, seed: u64) -> Vec<u8> {
    let start = now_ns() - 5_000_000_000;
    let routes = ["/pay", "/cart", "/home", "/cart", "/home"];
    let spans = (0..n)
        .map(|i| {
            let id = seed * 1_000_000 + i as u64 + 1;
            let route = if i < errors {
                "/pay"
            } else {
                routes[i % routes.len()]
            };
            let start = start + i as i64 * 1_000;
            opentelemetry_proto::tonic::trace::v1::Span {
                name: format!("GET {route}"),
                attributes: vec![kv("http.route", route)],
                ..smolder_sample_data::fixtures::server_span(id, start, 5_000_000, i < errors)
            }
        })
        .collect();
    smolder_sample_data::fixtures::service_spans(service, spans)
}

/// What the browser tests need — the ui/ directory and Chromium — or a
/// message saying how to get it.
pub fn browser_prerequisites() -> (PathBuf, PathBuf) {
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

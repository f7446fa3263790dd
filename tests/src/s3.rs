//! A real S3-compatible server for the object-storage tests: `s3s-fs` from
//! the crate registry (an S3 implementation over a directory, with SigV4
//! checks, conditional puts, multipart uploads and ranged reads), which
//! `scripts/test.sh` installs with `cargo install`. Each [`S3Server`] runs
//! its own on a free loopback port and serves a temporary directory.
//!
//! One guarantee of S3 that smolder relies on, s3s-fs lacks: it checks a
//! put's condition (`If-Match`, `If-None-Match`) and then writes, in two
//! steps, so of several conditional puts over the same ETag at once more
//! than one can succeed (measured: 4 to 12 of 12 concurrent puts). S3, GCS,
//! Azure and MinIO decide the condition and the write atomically. So the
//! clients talk to s3s-fs through a small proxy here that lets one request
//! at a time change an object (reads of it wait for the change; other
//! objects are not held up), which gives s3s-fs the atomic conditional put
//! of the stores smolder supports. Requests and answers pass unchanged.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The version `scripts/test.sh` installs.
pub const S3S_FS_VERSION: &str = "0.14.1";

/// A running `s3s-fs` behind its proxy, stopped when dropped.
pub struct S3Server {
    child: Child,
    /// The address clients use (the proxy's).
    pub addr: SocketAddr,
    root: tempfile::TempDir,
    /// Stops the proxy (in a mutex: a server is shared across
    /// `catch_unwind` in tests).
    proxy: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

impl S3Server {
    /// The bucket every server has.
    pub const BUCKET: &'static str = "smolder";
    /// Credentials the server checks signatures with.
    pub const ACCESS_KEY: &'static str = "smolder-test";
    /// The secret of [`Self::ACCESS_KEY`].
    pub const SECRET_KEY: &'static str = "smolder-test-secret";

    /// Starts a server with an empty bucket [`Self::BUCKET`]; panics with
    /// what to install when `s3s-fs` is missing.
    pub fn start() -> Self {
        let bin = binary();
        let root = tempfile::tempdir().expect("temporary bucket directory");
        std::fs::create_dir(root.path().join(Self::BUCKET)).expect("bucket directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let upstream = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new("setpriv")
            .args(["--pdeathsig", "KILL", "--"])
            .arg(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args([
                "--access-key",
                Self::ACCESS_KEY,
                "--secret-key",
                Self::SECRET_KEY,
            ])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting s3s-fs");
        let (addr, proxy) = proxy::start(upstream);
        let mut server = Self {
            child,
            addr,
            root,
            proxy: std::sync::Mutex::new(Some(proxy)),
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(upstream).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("s3s-fs exited at start ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not listen on {upstream} within 15 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// `s3://smolder/<prefix>`.
    pub fn url(&self, prefix: &str) -> String {
        format!("s3://{}/{prefix}", Self::BUCKET)
    }

    /// The variables a smolder process needs to reach the server, as the
    /// AWS SDKs read them.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", format!("http://{}", self.addr)),
            ("AWS_ACCESS_KEY_ID", Self::ACCESS_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", Self::SECRET_KEY.to_string()),
            ("AWS_REGION", "us-east-1".to_string()),
            ("AWS_ALLOW_HTTP", "true".to_string()),
        ]
    }

    /// The directory behind the bucket: `s3s-fs` keeps each object as a
    /// file at its key.
    pub fn bucket_dir(&self) -> PathBuf {
        self.root.path().join(Self::BUCKET)
    }

    /// Keys of the objects under `prefix` whose names end with `suffix`.
    pub fn objects(&self, prefix: &str, suffix: &str) -> Vec<String> {
        let base = self.bucket_dir();
        let mut out = Vec::new();
        walk(&base.join(prefix), &mut out);
        let mut keys: Vec<String> = out
            .into_iter()
            .filter_map(|p| {
                let key = p.strip_prefix(&base).ok()?.to_string_lossy().into_owned();
                key.ends_with(suffix).then_some(key)
            })
            .collect();
        keys.sort();
        keys
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else {
            out.push(path);
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let stop = self
            .proxy
            .get_mut()
            .map_or_else(|e| e.into_inner().take(), Option::take);
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The proxy in front of s3s-fs (see the module documentation).
mod proxy {
    use std::collections::HashMap;
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::extract::{Request, State};
    use axum::http::{Method, StatusCode, header};
    use axum::response::Response;
    use tokio::sync::RwLock;

    struct Proxy {
        upstream: SocketAddr,
        client: reqwest::Client,
        /// One lock per object path: changes one at a time, reads between.
        objects: Mutex<HashMap<String, Arc<RwLock<()>>>>,
    }

    /// Starts the proxy on a free loopback port in a thread of its own;
    /// answers its address and the sender that stops it.
    pub(super) fn start(upstream: SocketAddr) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("a free port for the S3 proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        // reqwest is built without a TLS provider of its own (the proxy
        // speaks plain HTTP, but the client wants one).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let proxy = Arc::new(Proxy {
            upstream,
            client: reqwest::Client::new(),
            objects: Mutex::new(HashMap::new()),
        });
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("the S3 proxy's runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let app = axum::Router::new().fallback(forward).with_state(proxy);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await;
            });
        });
        (addr, stop)
    }

    async fn forward(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
        let path = request.uri().path().to_string();
        let lock = {
            let mut objects = proxy.objects.lock().unwrap_or_else(|e| e.into_inner());
            Arc::clone(objects.entry(path).or_default())
        };
        let changes = !matches!(*request.method(), Method::GET | Method::HEAD);
        let (_read, _write) = if changes {
            (None, Some(lock.write_owned().await))
        } else {
            (Some(lock.read_owned().await), None)
        };
        match pass(&proxy, request).await {
            Ok(response) => response,
            Err(e) => Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(format!("S3 proxy: {e}")))
                .expect("a response"),
        }
    }

    /// Sends `request` on to s3s-fs as it came (its Host header too, which
    /// the signature covers) and returns the answer as it came.
    async fn pass(proxy: &Proxy, request: Request) -> Result<Response, Box<dyn std::error::Error>> {
        let (parts, body) = request.into_parts();
        let body = axum::body::to_bytes(body, usize::MAX).await?;
        let target = format!(
            "http://{}{}",
            proxy.upstream,
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let mut outgoing = proxy.client.request(parts.method, target).body(body);
        for (name, value) in &parts.headers {
            // The body is whole here: the client sets its length itself.
            if name != header::CONNECTION
                && name != header::TRANSFER_ENCODING
                && name != header::CONTENT_LENGTH
            {
                outgoing = outgoing.header(name, value);
            }
        }
        let answer = outgoing.send().await?;
        let mut response = Response::builder().status(answer.status());
        for (name, value) in answer.headers() {
            if name != header::CONNECTION && name != header::TRANSFER_ENCODING {
                response = response.header(name, value);
            }
        }
        Ok(response.body(Body::from(answer.bytes().await?))?)
    }
}

/// `s3s-fs` on the PATH or in the test command's tool directory.
fn binary() -> PathBuf {
    let tools =
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/smolder-tools/bin/s3s-fs"));
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    on_path
        .or(tools.filter(|p| p.is_file()))
        .unwrap_or_else(|| {
            panic!(
                "s3s-fs is missing: run scripts/test.sh, which installs it \
                 (cargo install s3s-fs --version {S3S_FS_VERSION} --features binary --locked \
                 --root ~/.cache/smolder-tools)"
            )
        })
}

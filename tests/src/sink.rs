//! A recording HTTP receiver: stands in for webhook services (chat, paging,
//! autoscalers) in end-to-end tests.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// One request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    /// The request path.
    pub path: String,
    /// Headers, names in lowercase.
    pub headers: HashMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
    /// The status the sink answered.
    pub answered: u16,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: not JSON ({e})", self.path))
    }
    /// A header's value (empty when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// How the sink answers a request to a path: status and optional `Retry-After` seconds.
pub type Policy = Arc<dyn Fn(&str) -> (u16, Option<u64>) + Send + Sync>;

/// An HTTP server on a loopback port that records every request and answers
/// as its policy says (status, optional `Retry-After` seconds).
pub struct Sink {
    /// Where it listens.
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Received>>>,
    _thread: std::thread::JoinHandle<()>,
}

impl Sink {
    /// Starts a sink answering as `policy` says.
    pub fn start(policy: Policy) -> Self {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                    tx.send(listener.local_addr().unwrap()).unwrap();
                    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
                        let log = Arc::clone(&log);
                        let policy = Arc::clone(&policy);
                        async move {
                            let path = req.uri().path().to_string();
                            let headers = req
                                .headers()
                                .iter()
                                .map(|(k, v)| {
                                    (k.as_str().to_string(), v.to_str().unwrap_or("").to_string())
                                })
                                .collect();
                            let body = axum::body::to_bytes(req.into_body(), 16 << 20)
                                .await
                                .unwrap()
                                .to_vec();
                            let (status, retry_after) = policy(&path);
                            log.lock().unwrap().push(Received {
                                path,
                                headers,
                                body,
                                answered: status,
                            });
                            let mut resp = axum::response::Response::builder().status(status);
                            if let Some(s) = retry_after {
                                resp = resp.header("retry-after", s.to_string());
                            }
                            resp.body(axum::body::Body::from(if status < 300 {
                                "ok"
                            } else {
                                "try later"
                            }))
                            .unwrap()
                        }
                    });
                    axum::serve(listener, app).await.unwrap();
                });
            })
        };
        Self {
            addr: rx.recv().unwrap(),
            log,
            _thread: thread,
        }
    }

    /// A sink that answers 200 to everything.
    pub fn ok() -> Self {
        Self::start(Arc::new(|_| (200, None)))
    }

    /// The URL of `path` on the sink.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The requests to `path` so far.
    pub fn received(&self, path: &str) -> Vec<Received> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Waits until `done` holds for the requests to `path` (90 s at most).
    pub fn wait(
        &self,
        path: &str,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        self.wait_at_most(Duration::from_secs(90), path, what, done)
    }

    /// Waits until `done` holds for the requests to `path`, `limit` at most.
    pub fn wait_at_most(
        &self,
        limit: Duration,
        path: &str,
        what: &str,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let got = self.received(path);
            if done(&got) {
                return got;
            }
            if Instant::now() >= deadline {
                let summary: Vec<String> = got
                    .iter()
                    .map(|r| {
                        let b = serde_json::from_slice::<Value>(&r.body).unwrap_or_default();
                        format!(
                            "{} {} {} {}",
                            r.answered,
                            r.header("webhook-id"),
                            b["status"],
                            b["group_labels"]
                        )
                    })
                    .collect();
                panic!(
                    "waiting for {what} at {path}; received (answer, id, status, group): {summary:#?}"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

//! Several `smolder serve` processes with roles, sharing one bucket of an
//! [`S3Server`]: each [`Node`] has its own data directory and prints the
//! listeners of its roles.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command};

use crate::s3::S3Server;
use crate::{listening, serve_command};

/// One `smolder serve --roles …` process, killed when dropped.
pub struct Node {
    child: Child,
    /// Its listeners by name (`http`, `otlp_grpc`, `otlp_http`, `flight`).
    pub addrs: HashMap<String, SocketAddr>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    expected: Vec<&'static str>,
    _data: tempfile::TempDir,
}

impl Node {
    /// Starts a process with `roles` (`ingest,query`) on the bucket prefix
    /// `prefix` of `s3`, with `extra` flags. An ingester gets a Flight
    /// listener; every listener is on a free loopback port.
    pub fn start(s3: &S3Server, prefix: &str, roles: &str, extra: &[&str]) -> Self {
        let data = tempfile::tempdir().expect("temporary data dir");
        let ingest = roles.split(',').any(|r| r == "ingest");
        let mut args: Vec<String> = [
            "--roles",
            roles,
            "--storage-url",
            &s3.url(prefix),
            "--otlp-grpc-addr",
            "127.0.0.1:0",
            "--otlp-http-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut expected = vec!["http"];
        if ingest {
            args.extend(["--flight-addr".to_string(), "127.0.0.1:0".to_string()]);
            expected.extend(["otlp_grpc", "otlp_http", "flight"]);
        }
        args.extend(["--data-dir".to_string(), data.path().display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        let env: Vec<(String, String)> = s3
            .env()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        let (child, addrs) = spawn(&args, &env, &expected);
        Self {
            child,
            addrs,
            args,
            env,
            expected,
            _data: data,
        }
    }

    /// The address of listener `name`.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.addrs[name]
    }

    /// Base URL of the HTTP API.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.addr("http"))
    }

    /// Kills the process with SIGKILL and waits for it to exit.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops the process with SIGTERM (graceful) and waits for it.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().is_ok_and(|s| s.success())
    }

    /// Starts the process again on its data directory and the same ports
    /// (clients and queriers reconnect to it).
    pub fn restart_on_same_ports(&mut self) {
        let mut args = self.args.clone();
        for (flag, name) in [
            ("--otlp-grpc-addr", "otlp_grpc"),
            ("--otlp-http-addr", "otlp_http"),
            ("--http-addr", "http"),
            ("--flight-addr", "flight"),
        ] {
            if let (Some(i), Some(addr)) =
                (args.iter().position(|a| a == flag), self.addrs.get(name))
            {
                args[i + 1] = addr.to_string();
            }
        }
        let (child, _) = spawn(&args, &self.env, &self.expected);
        self.child = child;
    }

    /// The process's data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self._data.path()
    }

    /// The process's writer id (`<data-dir>/writer-id`).
    pub fn writer_id(&self) -> String {
        std::fs::read_to_string(self._data.path().join("writer-id"))
            .expect("writer-id")
            .trim()
            .to_string()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(
    args: &[String],
    env: &[(String, String)],
    expected: &[&str],
) -> (Child, HashMap<String, SocketAddr>) {
    let mut child = serve_command()
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .spawn()
        .expect("spawning smolder serve");
    let addrs = listening(&mut child, expected);
    (child, addrs)
}

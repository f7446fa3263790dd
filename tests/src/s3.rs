//! A real S3-compatible server for the object-storage tests: `s3s-fs` from
//! the crate registry (an S3 implementation over a directory, with SigV4
//! checks, conditional puts, multipart uploads and ranged reads), which
//! `scripts/test.sh` installs with `cargo install`. Each [`S3Server`] runs
//! its own on a free loopback port and serves a temporary directory.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The version `scripts/test.sh` installs.
pub const S3S_FS_VERSION: &str = "0.14.1";

/// A running `s3s-fs`, stopped when dropped.
pub struct S3Server {
    child: Child,
    /// Its address.
    pub addr: SocketAddr,
    root: tempfile::TempDir,
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
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
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
        let mut server = Self { child, addr, root };
        let deadline = Instant::now() + Duration::from_secs(15);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("s3s-fs exited at start ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not listen on {addr} within 15 s"
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
        let _ = self.child.kill();
        let _ = self.child.wait();
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

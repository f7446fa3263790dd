//! Embeds the web UI in the crate.
//!
//! The pages are our own ES modules under `web/`; the one third-party asset,
//! the uPlot charting library, comes from npm (`package.json`,
//! `package-lock.json`). When `node_modules` lacks it, this script runs
//! `npm ci --omit=dev` so that `cargo run` works on a fresh machine, and stops
//! with a clear message when npm is missing. The result is a table of
//! (URL path, content type, ETag, bytes) that `src/lib.rs` serves.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files taken from npm packages: (file under node_modules, URL path under /ui/).
const VENDOR: &[(&str, &str)] = &[
    ("uplot/dist/uPlot.esm.js", "vendor/uPlot.esm.js"),
    ("uplot/dist/uPlot.min.css", "vendor/uPlot.min.css"),
];

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    println!("cargo:rerun-if-changed=web");
    println!("cargo:rerun-if-changed=package-lock.json");
    let modules = root.join("node_modules");
    if VENDOR.iter().any(|(file, _)| !modules.join(file).is_file()) {
        npm_ci(&root);
    }
    let mut files: Vec<(String, PathBuf)> = Vec::new();
    collect(&root.join("web"), "", &mut files);
    for (file, url) in VENDOR {
        let path = modules.join(file);
        println!("cargo:rerun-if-changed={}", path.display());
        files.push(((*url).to_string(), path));
    }
    files.sort();
    let mut out =
        String::from("/// (path under /ui/, content type, ETag, bytes) of every asset.\n");
    out.push_str("pub(crate) static ASSETS: &[(&str, &str, &str, &[u8])] = &[\n");
    for (url, path) in &files {
        let bytes =
            std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        writeln!(
            out,
            "    ({url:?}, {:?}, \"\\\"{:016x}\\\"\", include_bytes!({:?})),",
            content_type(url),
            fnv1a(&bytes),
            path.display().to_string(),
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("assets.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("writing {}: {e}", dest.display()));
}

/// Installs the npm dependencies the UI ships (not the test-only ones).
fn npm_ci(root: &Path) {
    let npm = if cfg!(windows) { "npm.cmd" } else { "npm" };
    let status = Command::new(npm)
        .args(["ci", "--omit=dev", "--no-audit", "--no-fund"])
        .current_dir(root)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!(
            "`npm ci --omit=dev` in {} failed ({s}); it fetches the UI's charting library \
             (uPlot) from the npm registry. Fix the npm error above and build again.",
            root.display()
        ),
        Err(e) => panic!(
            "building smolder's web UI needs npm to fetch its charting library (uPlot), and \
             running npm failed: {e}. Install Node.js and npm (Debian: `apt-get install npm`) \
             and build again, or run `npm ci --omit=dev` in {} yourself.",
            root.display()
        ),
    }
}

/// Every file under `dir`, with its path relative to the web root.
fn collect(dir: &Path, prefix: &str, out: &mut Vec<(String, PathBuf)>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("reading a directory entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if path.is_dir() {
            collect(&path, &format!("{prefix}{name}/"), out);
        } else {
            out.push((format!("{prefix}{name}"), path));
        }
    }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// A content hash for ETags (FNV-1a, 64 bits): changes whenever a file does.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need
# (OpenTelemetry Python SDK and exporters from PyPI, in their own virtual
# environments; Prometheus, Alertmanager and Chromium from Debian; the UI's
# npm packages), builds the workspace once in the debug profile, and runs
# every test. README's test command; .ci/run calls it.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "missing $1: $2" >&2; exit 1; }
}
need cargo "install the Rust toolchain (rustup)"
need python3 "install Python 3.11 or newer (apt-get install python3 python3-venv)"
need npm "install Node.js and npm (apt-get install nodejs npm)"

# Python OTLP exporters. The JSON exporter (beta) pins other versions of the
# shared exporter packages than the gRPC and HTTP/protobuf exporters, so it
# gets its own virtual environment.
OTEL_SDK=1.45.2
OTEL_JSON=0.66b1
venv() {
  local dir=$1; shift
  local stamp="$dir/.installed"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$*" ]; then return; fi
  log "installing $* into $dir"
  python3 -m venv "$dir" || {
    echo "python3 -m venv failed: apt-get install python3-venv" >&2; exit 1; }
  "$dir/bin/pip" install --quiet --disable-pip-version-check "$@"
  echo "$*" > "$stamp"
}
venv .venv-otel "opentelemetry-sdk==$OTEL_SDK" \
  "opentelemetry-exporter-otlp-proto-grpc==$OTEL_SDK" \
  "opentelemetry-exporter-otlp-proto-http==$OTEL_SDK"
venv .venv-otel-json "opentelemetry-exporter-otlp-json-http==$OTEL_JSON"
# A real SMTP server for the email receiver's test.
venv .venv-smtp "aiosmtpd==1.4.6"

# Real Prometheus for the burn-rate cross-check, real Alertmanager for the
# forwarding test (Debian packages).
apt_install() {
  local package=$1
  log "installing $package (apt)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package" \
    || { $SUDO apt-get update && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$package"; } \
    || { echo "installing $package failed: apt-get install $package" >&2; exit 1; }
}
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  apt_install prometheus
fi
if ! command -v prometheus-alertmanager >/dev/null 2>&1 && ! command -v alertmanager >/dev/null 2>&1; then
  apt_install prometheus-alertmanager
fi

# Headless Chromium for the web UI's end-to-end test.
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  apt_install chromium
fi
# Text in the screenshots needs a font (a recommendation of chromium).
if ! dpkg -s fonts-liberation >/dev/null 2>&1 && ! dpkg -s fonts-dejavu-core >/dev/null 2>&1; then
  apt_install fonts-liberation
fi

# The UI's npm packages: uPlot (embedded by the ui crate's build script) and
# playwright-core (drives Chromium in the UI test), as pinned by the lock file.
if [ ! -f ui/node_modules/.package-lock.json ] || ! cmp -s ui/package-lock.json ui/node_modules/.stamp-lock; then
  log "npm ci (ui/)"
  (cd ui && npm ci --no-audit --no-fund && cp package-lock.json node_modules/.stamp-lock)
fi

log "cargo fmt --check"
cargo fmt --all -- --check

# No dependency declared and unused (cargo-machete, from the crate registry).
if ! command -v cargo-machete >/dev/null 2>&1; then
  log "installing cargo-machete"
  cargo install --locked cargo-machete@0.9.2
fi
log "cargo machete"
cargo machete

# A real S3-compatible server for the object-storage tests (s3s-fs, from the
# crate registry; its own build, kept between runs).
S3S_FS=0.14.1
TOOLS="$HOME/.cache/smolder-tools"
if [ ! -x "$TOOLS/bin/s3s-fs" ] || [ "$(cat "$TOOLS/s3s-fs.version" 2>/dev/null)" != "$S3S_FS" ]; then
  log "installing s3s-fs $S3S_FS"
  CARGO_TARGET_DIR="$TOOLS/target" cargo install --locked --force --root "$TOOLS" \
    --features binary s3s-fs@"$S3S_FS"
  rm -rf "$TOOLS/target"
  echo "$S3S_FS" > "$TOOLS/s3s-fs.version"
fi
export PATH="$TOOLS/bin:$PATH"

# One build of the workspace (debug profile): the binary the end-to-end tests
# run, and every test target.
log "building"
cargo build --workspace --all-targets --locked

log "running tests"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast
else
  cargo test --workspace --locked --no-fail-fast
fi

# The end-to-end tests again with the Parquet files and the manifest in an S3
# bucket (the harness gives each data directory its own s3s-fs), but those
# that look at the files on the local disk or drive a browser.
log "running the end-to-end tests with s3:// storage"
S3_BINARIES=(alerting api auth durability otlp_grpc_conformance otlp_http_conformance
  prometheus_crosscheck python_sdk rust_otlp slo sql_golden tenants tls)
if command -v cargo-nextest >/dev/null 2>&1; then
  filter=$(printf 'binary(%s) | ' "${S3_BINARIES[@]}")
  SMOLDER_TEST_STORAGE=s3 cargo nextest run --workspace --locked --no-fail-fast -E \
    "(${filter% | }) & !test(=spans_slo_end_to_end) & !test(=a_tenant_reaches_its_own_data_only_whatever_sql_it_writes)"
else
  SMOLDER_TEST_STORAGE=s3 cargo test --workspace --locked --no-fail-fast \
    $(printf -- '--test %s ' "${S3_BINARIES[@]}") -- \
    --skip spans_slo_end_to_end --skip a_tenant_reaches_its_own_data_only_whatever_sql_it_writes
fi

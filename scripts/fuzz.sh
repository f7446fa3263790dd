#!/usr/bin/env bash
# Runs smolder's coverage-guided fuzz targets (cargo fuzz, libFuzzer) for a
# given time each, starting from the seed corpus in fuzz/corpus/<target>.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]     # default: 60 s, every target
#
# Targets: otlp_protobuf (protobuf decoding and conversion to Arrow, with
# the direct and prost paths of traces checked against each other),
# otlp_json, slo_yaml, alerting_config, sql_sandbox. New inputs are kept in
# target/fuzz-corpus/<target> (not in the repository); a crash is written to
# fuzz/artifacts/<target>/ and the run stops — make it a regression test
# (README, "Fuzzing"). Needs the nightly toolchain and cargo-fuzz, which
# this script installs from crates.io when missing. Prints the executions
# of each target.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(otlp_protobuf otlp_json slo_yaml alerting_config sql_sandbox)
fi
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo +nightly fuzz --version >/dev/null 2>&1 || cargo +nightly install cargo-fuzz --locked
# Safe Rust with overflow checks and debug assertions: libFuzzer's own
# checks find panics; AddressSanitizer (-s address) finds little more here
# and halves the executions per second.
sanitizer="${FUZZ_SANITIZER:-none}"
cargo +nightly fuzz build -s "$sanitizer"
for target in "${targets[@]}"; do
  work="target/fuzz-corpus/$target"
  mkdir -p "$work"
  log="target/fuzz-$target.log"
  cargo +nightly fuzz run -s "$sanitizer" "$target" "$work" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -rss_limit_mb=4096 >"$log" 2>&1 || {
    echo "$target: FAILED — see $log and fuzz/artifacts/$target/"
    exit 1
  }
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  echo "$target: $execs executions in ${seconds}s ($rate/s), coverage $cov edges, no crash"
done

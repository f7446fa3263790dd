#!/usr/bin/env python3
"""What authentication costs gRPC ingest: spans per server CPU-second with
every export carrying an ingest token (`--auth required`) against none
(`--auth disabled`), in pairs of runs one right after the other, alternating which goes first,
after a warm-up run (the machine is noisy; the median of the pairs' ratios is
the figure).

Each run: a release `smolder serve` on loopback with a fresh data directory,
`smolder loadgen` over gRPC (batches of 512 spans, --concurrency connections)
for --duration; the server's CPU time comes from /proc/<pid>/stat (see
bench_ingest.py, whose helpers this uses). Target (issue 18): at most 5 %
less throughput per server CPU-second.

Usage: scripts/bench_auth.py [--duration 8s] [--concurrency 4] [--pairs 3]
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import binary, cpu_seconds, start_server  # noqa: E402


def run(bin_path, args, auth):
    with tempfile.TemporaryDirectory(prefix="smolder-bench-auth-") as data_dir:
        token = None
        if auth == "required":
            out = subprocess.run(
                [bin_path, "token", "create", "--data-dir", data_dir, "--scope", "ingest"],
                check=True, capture_output=True, text=True,
            )
            token = out.stdout.strip().splitlines()[-1]
        proc, addrs = start_server(bin_path, data_dir, "--auth", auth, "--buffer-limit", args.buffer_limit)
        try:
            cpu0 = cpu_seconds(proc.pid)
            cmd = [bin_path, "loadgen", "--endpoint", "http://" + addrs["otlp_grpc"], "--protocol", "grpc",
                   "--batch-size", "512", "--concurrency", str(args.concurrency),
                   "--duration", args.duration, "--json"]
            if token:
                cmd += ["--token", token]
            report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
            cpu = cpu_seconds(proc.pid) - cpu0
            if report["requests_failed"]:
                raise SystemExit(f"{report['requests_failed']} requests failed with auth {auth}: {report['failures']}")
            return report["items_per_second"], report["items_acknowledged"] / cpu
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", default="8s")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--buffer-limit", default="6GiB")
    parser.add_argument("--pairs", type=int, default=3)
    args = parser.parse_args()
    bin_path = binary()
    print(f"# authentication cost, gRPC traces, {time.strftime('%Y-%m-%d')}, duration {args.duration}, "
          f"concurrency {args.concurrency}, batches of 512")
    print()
    print("| pair | tokens: items/s | none: items/s | tokens: per CPU-s | none: per CPU-s | ratio (per CPU-s) |")
    print("|---|---|---|---|---|---|")
    # The first runs after a build or another benchmark are slower (caches,
    # clocks): one warm-up run is thrown away, and the pairs alternate which
    # mode runs first.
    run(bin_path, args, "disabled")
    ratios = []
    for pair in range(args.pairs):
        if pair % 2 == 0:
            with_tokens = run(bin_path, args, "required")
            without = run(bin_path, args, "disabled")
        else:
            without = run(bin_path, args, "disabled")
            with_tokens = run(bin_path, args, "required")
        ratios.append(with_tokens[1] / without[1])
        print(f"| {pair + 1} | {with_tokens[0]:.0f} | {without[0]:.0f} | {with_tokens[1]:.0f} | {without[1]:.0f} | "
              f"{ratios[-1]:.1%} |", flush=True)
    print()
    print(f"median: with tokens {statistics.median(ratios):.1%} of the throughput per server CPU-second")


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""What authentication and tenancy cost gRPC ingest: spans per server
CPU-second with every export carrying an ingest token of tenant `acme`
(`--auth required`: the token is checked, the tenant travels with the
export into its own buffer, WAL records and files) against none (`--auth
disabled`, the default tenant).

The two servers run *at the same time*, each fed by its own `smolder
loadgen`, so that both see the same machine — its clock speed, its other
load, its caches — and the noise that made sequential runs differ by 12 %
between two runs of the same configuration cancels out; the median over
several rounds is the figure. Each round: two release `smolder serve` on
loopback with fresh data directories, two loadgens over gRPC (batches of
512 spans, --concurrency connections each) for --duration; each server's
CPU time from /proc/<pid>/stat (bench_ingest.py's helpers). Target (issue
18): at most 5 % less throughput per server CPU-second.

Usage: scripts/bench_auth.py [--duration 10s] [--concurrency 2] [--rounds 5]
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


def loadgen(bin_path, args, addrs, token):
    cmd = [bin_path, "loadgen", "--endpoint", "http://" + addrs["otlp_grpc"], "--protocol", "grpc",
           "--batch-size", "512", "--concurrency", str(args.concurrency),
           "--duration", args.duration, "--json"]
    if token:
        cmd += ["--token", token]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)


def round_(bin_path, args):
    """One round: both servers under load at once; (items/s, items per CPU-s) of each."""
    with tempfile.TemporaryDirectory(prefix="smolder-bench-auth-") as with_dir, \
            tempfile.TemporaryDirectory(prefix="smolder-bench-noauth-") as without_dir:
        out = subprocess.run(
            [bin_path, "token", "create", "--data-dir", with_dir, "--tenant", "acme", "--scope", "ingest"],
            check=True, capture_output=True, text=True,
        )
        token = out.stdout.strip().splitlines()[-1]
        servers = {
            "tokens": start_server(bin_path, with_dir, "--auth", "required", "--buffer-limit", args.buffer_limit),
            "none": start_server(bin_path, without_dir, "--auth", "disabled", "--buffer-limit", args.buffer_limit),
        }
        try:
            cpu0 = {k: cpu_seconds(p.pid) for k, (p, _) in servers.items()}
            loads = {k: loadgen(bin_path, args, addrs, token if k == "tokens" else None)
                     for k, (_, addrs) in servers.items()}
            reports = {k: json.loads(p.communicate()[0]) for k, p in loads.items()}
            result = {}
            for k, (proc, _) in servers.items():
                report = reports[k]
                if report["requests_failed"]:
                    raise SystemExit(f"{report['requests_failed']} requests failed ({k}): {report['failures']}")
                cpu = cpu_seconds(proc.pid) - cpu0[k]
                result[k] = (report["items_per_second"], report["items_acknowledged"] / cpu)
            return result
        finally:
            for proc, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--buffer-limit", default="6GiB")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    bin_path = binary()
    print(f"# authentication and tenancy cost, gRPC traces, {time.strftime('%Y-%m-%d')}, "
          f"both servers at once, duration {args.duration}, concurrency {args.concurrency} each, batches of 512")
    print()
    print("| round | tokens: items/s | none: items/s | tokens: per CPU-s | none: per CPU-s | ratio (per CPU-s) |")
    print("|---|---|---|---|---|---|")
    round_(bin_path, args)  # warm-up, not counted
    ratios = []
    for n in range(args.rounds):
        r = round_(bin_path, args)
        ratios.append(r["tokens"][1] / r["none"][1])
        print(f"| {n + 1} | {r['tokens'][0]:.0f} | {r['none'][0]:.0f} | {r['tokens'][1]:.0f} | "
              f"{r['none'][1]:.0f} | {ratios[-1]:.1%} |", flush=True)
    print()
    print(f"median: with tokens {statistics.median(ratios):.1%} of the throughput per server CPU-second "
          f"(min {min(ratios):.1%}, max {max(ratios):.1%})")


if __name__ == "__main__":
    sys.exit(main())

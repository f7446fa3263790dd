#!/usr/bin/env python3
"""Whole-server ingest benchmark: spans per server CPU-second over OTLP.

Starts a release `smolder serve` on loopback ephemeral ports for each protocol,
drives it with `smolder loadgen` (batches of 512 spans, ~10 attributes each),
and divides the spans the server acknowledged by the CPU time the *server
process* used (utime + stime from /proc/<pid>/stat), so loadgen's own CPU on
the same machine does not count. Also reports the server's peak RSS.

Each server gets a fresh temporary data directory, so its write-ahead log
(`--wal-sync`, default "always": fsync before acknowledging) starts empty. The
gRPC traces run is repeated with the other WAL policies, and without a WAL at
all (`--wal-enabled false`, the in-memory-only path), to show what durability
costs: the issue's target is at least 70 % of the in-memory-only throughput
with the default policy. Flushes to Parquet run as in production (when the
buffer is half full) in every run. A last run offers far more load than a small buffer holds, to show that
overload turns into backpressure (503 / UNAVAILABLE) and not into memory growth.

Usage: scripts/bench_ingest.py [--duration 10s] [--concurrency 4]
Every run is bounded by --duration; results print as a Markdown table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")


def binary():
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "release" / "smolder"
    if not path.exists():
        subprocess.run(["cargo", "build", "--release", "-p", "smolder"], cwd=ROOT, check=True)
    return path


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    # utime and stime are fields 14 and 15 of stat; after the ")" they are 12 and 13.
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_server(bin_path, data_dir, *extra, dedup=False):
    # loadgen sends its pool of bodies again and again: with the retried-
    # export filter on, every copy after the first would be dropped instead
    # of stored, and this would measure the filter, not ingest. The dedup
    # comparison sends every body once instead.
    proc = subprocess.Popen(
        [bin_path, "serve", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0",
         "--http-addr", "127.0.0.1:0", "--data-dir", data_dir, "--dedup-window", "5m" if dedup else "0s", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "RUST_LOG": "warn"},
    )
    addrs = {}
    while len(addrs) < 3:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("smolder serve exited before listening")
        if line.startswith("listening "):
            name, addr = line.split()[1].split("=")
            addrs[name] = addr
    return proc, addrs


def run(bin_path, protocol, args, signal="traces", extra_server=(), rate=0, dedup=False, extra_loadgen=()):
    with tempfile.TemporaryDirectory(prefix="smolder-bench-") as data_dir:
        return run_in(bin_path, data_dir, protocol, args, signal, extra_server, rate, dedup, extra_loadgen)


def run_in(bin_path, data_dir, protocol, args, signal, extra_server, rate, dedup=False, extra_loadgen=()):
    proc, addrs = start_server(bin_path, data_dir, "--buffer-limit", args.buffer_limit, *extra_server, dedup=dedup)
    try:
        endpoint = "http://" + (addrs["otlp_grpc"] if protocol == "grpc" else addrs["otlp_http"])
        cpu0 = cpu_seconds(proc.pid)
        out = subprocess.run(
            [bin_path, "loadgen", "--endpoint", endpoint, "--protocol", protocol, "--signal", signal,
             "--batch-size", "512", "--concurrency", str(args.concurrency), "--duration", args.duration,
             "--rate", str(rate), "--json", *extra_loadgen],
            check=True, capture_output=True, text=True,
        )
        cpu = cpu_seconds(proc.pid) - cpu0
        report = json.loads(out.stdout)
        return report, cpu, peak_rss_mib(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--buffer-limit", default="6GiB")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--only", choices=["dedup"], help="run one comparison only")
    args = parser.parse_args()
    bin_path = binary()
    if args.only == "dedup":
        return dedup_pairs(bin_path, args)

    print(f"# ingest benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, duration {args.duration}, "
          f"concurrency {args.concurrency}, batches of 512")
    print()
    print("| protocol | signal | WAL sync | acknowledged items | items/s (wall) | server CPU s | items per server CPU-second | p99 ms | failed requests | server peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for protocol, signal, sync in [("grpc", "traces", "always"), ("http-protobuf", "traces", "always"),
                                   ("http-json", "traces", "always"), ("grpc", "logs", "always"),
                                   ("grpc", "metrics", "always"), ("grpc", "traces", "100ms"),
                                   ("grpc", "traces", "off"), ("grpc", "traces", "disabled")]:
        extra = ("--wal-enabled", "false") if sync == "disabled" else ("--wal-sync", sync)
        report, cpu, rss = run(bin_path, protocol, args, signal, extra)
        acked = report["items_acknowledged"]
        print(f"| {protocol} | {signal} | {sync} | {acked} | {report['items_per_second']:.0f} | {cpu:.2f} | "
              f"{acked / cpu:.0f} | {report['latency_ms']['p99']:.1f} | {report['requests_failed']} | {rss:.0f} |",
              flush=True)

    # The machine is noisy: measure the WAL's cost as pairs of runs, one
    # right after the other, and report every pair and the median ratio.
    print()
    print("## WAL (default policy, always) against no WAL, gRPC traces, pairs of runs")
    print()
    print("| pair | WAL items/s | no-WAL items/s | ratio (wall) | WAL per CPU-s | no-WAL per CPU-s | ratio (per CPU-s) |")
    print("|---|---|---|---|---|---|---|")
    ratios = []
    for pair in range(args.pairs):
        runs = {}
        for sync in ("always", "disabled"):
            extra = ("--wal-enabled", "false") if sync == "disabled" else ("--wal-sync", sync)
            report, cpu, _ = run(bin_path, "grpc", args, "traces", extra)
            runs[sync] = (report["items_per_second"], report["items_acknowledged"] / cpu)
        wal, memory = runs["always"], runs["disabled"]
        ratios.append((wal[0] / memory[0], wal[1] / memory[1]))
        print(f"| {pair + 1} | {wal[0]:.0f} | {memory[0]:.0f} | {wal[0] / memory[0]:.0%} | {wal[1]:.0f} | "
              f"{memory[1]:.0f} | {wal[1] / memory[1]:.0%} |", flush=True)
    print()
    print(f"median ratio: {statistics.median(r[0] for r in ratios):.0%} of the wall-clock throughput, "
          f"{statistics.median(r[1] for r in ratios):.0%} per server CPU-second")
    print()
    print("## overload: buffer limit 256 MiB, load offered as fast as possible")
    print()
    limit = "256MiB"
    report, cpu, rss = run(bin_path, "grpc", argparse.Namespace(**{**vars(args), "buffer_limit": limit}), "traces")
    print(f"acknowledged {report['items_acknowledged']} spans, {report['requests_failed']} requests refused "
          f"({report['failures']}), server peak RSS {rss:.0f} MiB with a {limit} buffer")


def dedup_pairs(bin_path, args):
    """The retried-export filter's cost: servers with it on (5m) and off,
    one run right after the other, loadgen sending 1,500 distinct bodies of
    512 items once each (so every item is new to the filter)."""
    bodies = "1500"
    print(f"# retried-export filter, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
          f"concurrency {args.concurrency}, {bodies} distinct bodies of 512 items, each sent once")
    print()
    print("| signal | pair | filter on: items per server CPU-s | off | ratio |")
    print("|---|---|---|---|---|")
    for signal in ("traces", "logs"):
        ratios = []
        for pair in range(args.pairs):
            per_cpu = {}
            for on in (True, False):
                report, cpu, _ = run(bin_path, "grpc", args, signal, dedup=on,
                                     extra_loadgen=("--pool", bodies, "--requests", bodies))
                per_cpu[on] = report["items_acknowledged"] / cpu
            ratios.append(per_cpu[True] / per_cpu[False])
            print(f"| {signal} | {pair + 1} | {per_cpu[True]:.0f} | {per_cpu[False]:.0f} | {ratios[-1]:.0%} |", flush=True)
        print(f"| {signal} | median | | | {statistics.median(ratios):.0%} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

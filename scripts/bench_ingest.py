#!/usr/bin/env python3
"""Whole-server ingest benchmark: spans per server CPU-second over OTLP.

Starts a release `smolder serve` on loopback ephemeral ports for each protocol,
drives it with `smolder loadgen` (batches of 512 spans, ~10 attributes each),
and divides the spans the server acknowledged by the CPU time the *server
process* used (utime + stime from /proc/<pid>/stat), so loadgen's own CPU on
the same machine does not count. Also reports the server's peak RSS.

A last run offers far more load than a small buffer holds, to show that
overload turns into backpressure (503 / UNAVAILABLE) and not into memory growth.

Usage: scripts/bench_ingest.py [--duration 10s] [--concurrency 4]
Every run is bounded by --duration; results print as a Markdown table.
"""

import argparse
import json
import os
import subprocess
import sys
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


def start_server(bin_path, *extra):
    proc = subprocess.Popen(
        [bin_path, "serve", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0",
         "--http-addr", "127.0.0.1:0", *extra],
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


def run(bin_path, protocol, args, signal="traces", extra_server=(), rate=0):
    proc, addrs = start_server(bin_path, "--buffer-limit", args.buffer_limit, *extra_server)
    try:
        endpoint = "http://" + (addrs["otlp_grpc"] if protocol == "grpc" else addrs["otlp_http"])
        cpu0 = cpu_seconds(proc.pid)
        out = subprocess.run(
            [bin_path, "loadgen", "--endpoint", endpoint, "--protocol", protocol, "--signal", signal,
             "--batch-size", "512", "--concurrency", str(args.concurrency), "--duration", args.duration,
             "--rate", str(rate), "--json"],
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
    args = parser.parse_args()
    bin_path = binary()

    print(f"# ingest benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, duration {args.duration}, "
          f"concurrency {args.concurrency}, batches of 512")
    print()
    print("| protocol | signal | acknowledged items | items/s (wall) | server CPU s | items per server CPU-second | failed requests | server peak RSS MiB |")
    print("|---|---|---|---|---|---|---|---|")
    for protocol, signal in [("grpc", "traces"), ("http-protobuf", "traces"), ("http-json", "traces"),
                             ("grpc", "logs"), ("grpc", "metrics")]:
        report, cpu, rss = run(bin_path, protocol, args, signal)
        acked = report["items_acknowledged"]
        print(f"| {protocol} | {signal} | {acked} | {report['items_per_second']:.0f} | {cpu:.2f} | "
              f"{acked / cpu:.0f} | {report['requests_failed']} | {rss:.0f} |", flush=True)

    print()
    print("## overload: buffer limit 256 MiB, load offered as fast as possible")
    print()
    limit = "256MiB"
    report, cpu, rss = run(bin_path, "grpc", argparse.Namespace(**{**vars(args), "buffer_limit": limit}), "traces")
    print(f"acknowledged {report['items_acknowledged']} spans, {report['requests_failed']} requests refused "
          f"({report['failures']}), server peak RSS {rss:.0f} MiB with a {limit} buffer")


if __name__ == "__main__":
    sys.exit(main())

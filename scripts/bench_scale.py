#!/usr/bin/env python3
"""Benchmarks of several processes on one bucket (issue 20), against a real
S3-compatible server (`s3s-fs`, installed by scripts/test.sh into
~/.cache/smolder-tools) on loopback.

1. Ingest: one ingester against two (`smolder serve --roles ingest` on the
   same bucket, each with its own data directory and write-ahead log), the
   same total load (`smolder loadgen`, gRPC, batches of 512 spans, the
   concurrency split between the ingesters), spans acknowledged per second
   of the ingesters' CPU (utime + stime of every ingester process; loadgen's
   and s3s-fs's own CPU do not count). An ingester's CPU is that of its
   whole life, the last flush at stop included, so every span counted is in
   a Parquet file in the bucket; a process with every role on a local data
   directory is measured the same way for reference. Rounds of runs, one
   right after the other, because the machine is noisy.
2. Queries: a day of history (10 M spans by default) is loaded into a local
   data directory, then the five typical queries of bench_query.py are
   timed on (a) the local files, (b) the same files in the bucket read by a
   querier (`--roles query`) without its read cache, and (c) with it: the
   first run of each query right after start (cold: nothing copied, no
   footers parsed), then, once the background copies are done, the median of
   several runs (warm). s3s-fs on loopback has no network latency; a real
   bucket adds some 10-50 ms to every request the cache saves.

Usage: scripts/bench_scale.py [--spans 10000000] [--runs 5] [--duration 10s]
       [--pairs 3] [--only ingest|query]
Every load is bounded in requests and time.
"""

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_ingest import binary, start_server
from bench_query import load_history, metric, sql, stop, typical_queries

TOOLS = Path.home() / ".cache" / "smolder-tools" / "bin"
BUCKET = "bench"
KEY, SECRET = "smolder-bench", "smolder-bench-secret"


class S3:
    """A running s3s-fs serving a temporary directory with one bucket."""

    def __init__(self):
        binary_path = TOOLS / "s3s-fs"
        if not binary_path.exists():
            raise SystemExit(f"{binary_path} is missing: run scripts/test.sh once (it installs s3s-fs)")
        self.root = Path(tempfile.mkdtemp(prefix="smolder-s3-"))
        (self.root / BUCKET).mkdir()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        self.addr = f"127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            [str(binary_path), "--host", "127.0.0.1", "--port", str(port), "--access-key", KEY,
             "--secret-key", SECRET, str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.time() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("s3s-fs did not listen within 15 s")
                time.sleep(0.05)

    def env(self):
        return {**os.environ, "AWS_ENDPOINT_URL": f"http://{self.addr}", "AWS_ACCESS_KEY_ID": KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_REGION": "us-east-1", "AWS_ALLOW_HTTP": "true",
                "RUST_LOG": "warn"}

    def url(self, prefix):
        return f"s3://{BUCKET}/{prefix}"

    def close(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_role(bin_path, s3, prefix, roles, data_dir, *extra):
    """`smolder serve --roles ROLES` on the bucket prefix; returns the
    process and its listeners."""
    ingest = "ingest" in roles.split(",")
    args = [bin_path, "serve", "--roles", roles, "--storage-url", s3.url(prefix), "--data-dir", data_dir,
            "--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0",
            "--dedup-window", "0s", *extra]
    expected = {"http"}
    if ingest:
        args += ["--flight-addr", "127.0.0.1:0"]
        expected |= {"otlp_grpc", "otlp_http", "flight"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=s3.env())
    addrs = {}
    while not expected <= addrs.keys():
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"smolder serve --roles {roles} exited before listening")
        if line.startswith("listening "):
            name, addr = line.split()[1].split("=")
            addrs[name] = addr
    return proc, addrs


def ingest_run(bin_path, s3, args, ingesters, run):
    """Load split over `ingesters` processes (0: one process with every
    role on a local data directory, for reference); returns (acknowledged
    spans, ingesters' CPU seconds, wall seconds)."""
    dirs = [tempfile.mkdtemp(prefix="smolder-ingester-") for _ in range(max(ingesters, 1))]
    if ingesters == 0:
        procs = [start_server(bin_path, dirs[0], "--buffer-limit", "2GiB")]
    else:
        procs = [start_role(bin_path, s3, f"ingest-{run}", "ingest", d, "--buffer-limit", "2GiB") for d in dirs]
    ingesters = len(procs)
    try:
        per = max(1, args.concurrency // ingesters)
        t0 = time.time()
        loads = [subprocess.Popen(
            [bin_path, "loadgen", "--endpoint", "http://" + addrs["otlp_grpc"], "--protocol", "grpc",
             "--signal", "traces", "--batch-size", "512", "--concurrency", str(per), "--duration",
             args.duration, "--seed", str(i), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for i, (_, addrs) in enumerate(procs)]
        reports = [json.loads(load.communicate(timeout=600)[0]) for load in loads]
        wall = time.time() - t0
        # The CPU of the whole life of each ingester, its last flush at stop
        # included: every acknowledged span is then in a Parquet file (a
        # run that happened not to flush would look cheaper otherwise).
        cpu = 0.0
        for p, _ in procs:
            p.terminate()
            _, _, usage = os.wait4(p.pid, 0)
            p.returncode = 0
            cpu += usage.ru_utime + usage.ru_stime
        return sum(r["items_acknowledged"] for r in reports), cpu, wall
    finally:
        for p, _ in procs:
            if p.returncode is None:
                stop(p)
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


def bench_ingest(bin_path, s3, args):
    print(f"## Ingest on s3s-fs: one ingester against two, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, "
          f"{args.duration} per run, {args.concurrency} loadgen connections in all, batches of 512 spans")
    print()
    print("| pair | ingesters | spans acknowledged | spans/s (wall) | ingesters' CPU s | spans per server CPU-second |")
    print("|---|---|---|---|---|---|")
    ratios, local = [], []
    for pair in range(args.pairs):
        per_cpu = {}
        for n in (1, 2, 0):
            acked, cpu, wall = ingest_run(bin_path, s3, args, n, f"{pair}-{n}")
            per_cpu[n] = acked / cpu
            label = n or "1, local disk, every role (reference)"
            print(f"| {pair + 1} | {label} | {acked} | {acked / wall:.0f} | {cpu:.2f} | {acked / cpu:.0f} |",
                  flush=True)
        ratios.append(per_cpu[2] / per_cpu[1])
        local.append(per_cpu[1] / per_cpu[0])
    print()
    print(f"two ingesters per server CPU-second against one: median {statistics.median(ratios):.0%} "
          f"({', '.join(f'{r:.0%}' for r in ratios)})")
    print(f"one ingester on s3s-fs against one process on a local disk: median "
          f"{statistics.median(local):.0%}")
    print()


def once(http, query):
    t0 = time.perf_counter()
    rows = len(sql(http, query)["rows"])
    return time.perf_counter() - t0, rows


def first_and_median(http, query, runs):
    first, rows = once(http, query)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sql(http, query)
        times.append(time.perf_counter() - t0)
    return first, statistics.median(times), rows


def wait_for_copies(http):
    """Until the read cache has stopped copying files."""
    previous = -1
    deadline = time.time() + 600
    while time.time() < deadline:
        files = metric(http, "smolder_read_cache_files")
        if files == previous:
            return files
        previous = files
        time.sleep(3)
    return previous


def bench_query(bin_path, s3, args):
    with tempfile.TemporaryDirectory(prefix="smolder-sbench-") as work:
        data_dir = os.path.join(work, "local")
        proc, http, loaded, load_seconds = load_history(bin_path, data_dir, args.spans)
        queries = {name: t.format(spans="spans", logs="logs") for name, t in typical_queries(http).items()}
        stop(proc)
        # s3s-fs keeps each object as a file at its key: the bucket gets the
        # same files (hard links) under the prefix "q".
        shutil.copytree(Path(data_dir) / "parquet", s3.root / BUCKET / "q", copy_function=os.link)

        results = {}
        # Local files, on a fresh start (the OS page cache is warm, the
        # engine's footer cache is not).
        proc, addrs = start_server(bin_path, data_dir, "--query-max-rows", "100000")
        results["local"] = {n: first_and_median(addrs["http"], q, args.runs) for n, q in queries.items()}
        stop(proc)
        copies = 0
        for name, size in (("s3, no cache", "0"), ("s3, cache", "8GiB")):
            querier_dir = os.path.join(work, name.replace(", ", "-").replace(" ", "-"))
            proc, addrs = start_role(bin_path, s3, "q", "query", querier_dir, "--read-cache-size", size,
                                     "--query-max-rows", "100000")
            http = addrs["http"]
            firsts = {n: once(http, q)[0] for n, q in queries.items()}
            if size != "0":
                copies = wait_for_copies(http)
            results[name] = {n: (firsts[n], *first_and_median(http, q, args.runs)[1:]) for n, q in queries.items()}
            stop(proc)

    print(f"## Queries from s3s-fs against local disk, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs")
    print()
    print(f"loaded {loaded['spans']['items_acknowledged']} spans, {loaded['logs']['items_acknowledged']} log "
          f"records, {loaded['metrics']['items_acknowledged']} metric points in {load_seconds:.0f} s; "
          f"the warm querier held {copies:.0f} files in its cache")
    print()
    print("| query | local: first ms | local: median ms | s3 no cache: first | s3 no cache: median | "
          "s3 cache: cold (first) | s3 cache: warm (median) | warm / local | rows |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in queries:
        local, bare, cached = results["local"][n], results["s3, no cache"][n], results["s3, cache"][n]
        print(f"| {n} | {local[0] * 1e3:.1f} | {local[1] * 1e3:.1f} | {bare[0] * 1e3:.1f} | {bare[1] * 1e3:.1f} | "
              f"{cached[0] * 1e3:.1f} | {cached[1] * 1e3:.1f} | {cached[1] / local[1]:.2f} | {local[2]} |", flush=True)
    print()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--only", choices=["ingest", "query"])
    args = parser.parse_args()
    bin_path = binary()
    s3 = S3()
    try:
        if args.only != "query":
            bench_ingest(bin_path, s3, args)
        if args.only != "ingest":
            bench_query(bin_path, s3, args)
    finally:
        s3.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

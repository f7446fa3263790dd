#!/usr/bin/env python3
"""Query benchmark: smolder's SQL API against DuckDB on the same Parquet files.

1. Starts a release `smolder serve` on loopback ephemeral ports with a fresh
   data directory and loads a day of generated history with `smolder loadgen
   --history 24h` (every request unique): about 10 million spans, plus logs
   and metric points. Loadgen's report gives the bytes of OTLP protobuf sent.
2. Stops the server (SIGTERM flushes the buffer), starts it again so that
   every row is read from Parquet, and lets compaction settle.
3. Times five typical queries through `POST /api/v1/sql` (the HTTP round trip
   and JSON encoding included) and the same queries in DuckDB (PyPI `duckdb`,
   in this process, results fetched as Arrow tables) over the same Parquet
   files: the median of several runs after one warm-up.
4. Reports bytes on disk per span / log record / point and the ratio to the
   same data as OTLP protobuf.

Usage: scripts/bench_query.py [--spans 10000000] [--runs 5]
Needs the `duckdb` Python package (the script installs it into .venv-bench).
Every load is bounded in requests and time.
"""

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_ingest import binary, start_server

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-bench"


def ensure_duckdb():
    """Re-runs this script inside .venv-bench with duckdb installed."""
    try:
        import duckdb  # noqa: F401
        import pytz  # noqa: F401  (DuckDB needs it for time zone aware timestamps)
        import pyarrow  # noqa: F401  (results are fetched as Arrow, like smolder's engine holds them)
        return
    except ImportError:
        pass
    python = VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "duckdb==1.4.2", "pytz", "pyarrow"], check=True)
    os.execv(str(python), [str(python), *sys.argv])


SERVER_FLAGS = ("--buffer-limit", "2GiB", "--retention-traces", "30d", "--retention-logs", "30d",
                "--query-max-rows", "100000")


def stop(proc):
    proc.terminate()
    proc.wait(timeout=600)


def loadgen(bin_path, endpoint, signal, requests, batch):
    out = subprocess.run(
        [bin_path, "loadgen", "--endpoint", endpoint, "--protocol", "grpc", "--signal", signal,
         "--batch-size", str(batch), "--concurrency", "4", "--requests", str(requests),
         "--history", "24h", "--duration", "30m", "--retry", "--json"],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def sql(http, query):
    request = urllib.request.Request(
        f"http://{http}/api/v1/sql", data=json.dumps({"sql": query}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.load(response)


def metric(http, name):
    with urllib.request.urlopen(f"http://{http}/metrics", timeout=60) as response:
        total = 0.0
        for line in response.read().decode().splitlines():
            if line.startswith(name):
                total += float(line.rsplit(" ", 1)[1])
        return total


def load_history(bin_path, data_dir, spans):
    """Loads a day of history (`spans` spans, a quarter as many log records,
    a twentieth as many metric points) into a server on `data_dir`, stops it
    (the shutdown flushes), starts it again and waits for compaction to
    settle. Returns the running server, its HTTP address, loadgen's reports
    and the load's seconds."""
    batch = 512
    span_requests = max(1, spans // batch)
    log_requests = max(1, span_requests // 4)
    metric_requests = max(1, span_requests // 20)
    proc, addrs = start_server(bin_path, data_dir, *SERVER_FLAGS)
    grpc = "http://" + addrs["otlp_grpc"]
    t0 = time.time()
    loaded = {
        "spans": loadgen(bin_path, grpc, "traces", span_requests, batch),
        "logs": loadgen(bin_path, grpc, "logs", log_requests, batch),
        "metrics": loadgen(bin_path, grpc, "metrics", metric_requests, batch),
    }
    load_seconds = time.time() - t0
    stop(proc)

    proc, addrs = start_server(bin_path, data_dir, *SERVER_FLAGS)
    http = addrs["http"]
    # Let compaction merge the flushed files (hours over 10 minutes ago).
    deadline = time.time() + 900
    previous = -1
    while time.time() < deadline:
        files = metric(http, "smolder_storage_files{")
        if files == previous:
            break
        previous = files
        time.sleep(20)
    return proc, http, loaded, load_seconds


def typical_queries(http):
    """The five typical queries, as templates over {spans} and {logs}, with
    a trace id (and a trace with logs) taken from the server at `http`."""
    trace_id = sql(http, "SELECT trace_id FROM spans WHERE status_code = 'ERROR' "
                         "AND start_time < now() - INTERVAL '3 hours' LIMIT 1")["rows"][0][0]
    # Loadgen generates logs apart from spans: take a trace that has logs.
    log_trace_id = sql(http, "SELECT trace_id FROM logs WHERE severity_text = 'ERROR' "
                             "AND time < now() - INTERVAL '3 hours' LIMIT 1")["rows"][0][0]
    hour_start = "now() - INTERVAL '6 hours'"
    hour_end = "now() - INTERVAL '5 hours'"
    queries = {
        "errors per service per minute, one day":
            "SELECT service_name, date_trunc('minute', start_time) AS minute, "
            "count(*) FILTER (WHERE status_code = 'ERROR') AS errors, count(*) AS spans "
            "FROM {spans} WHERE start_time > now() - INTERVAL '1 day' GROUP BY 1, 2 ORDER BY 2, 1",
        "p99 duration by route, one hour":
            "SELECT service_name, http_route, percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ns) "
            f"FROM {{spans}} WHERE start_time >= {hour_start} AND start_time < {hour_end} "
            "GROUP BY 1, 2 ORDER BY 3 DESC",
        "one trace by id":
            f"SELECT * FROM {{spans}} WHERE trace_id = '{trace_id}' ORDER BY start_time",
        "logs of one trace":
            f"SELECT time, service_name, severity_text, body FROM {{logs}} WHERE trace_id = '{log_trace_id}' "
            "ORDER BY time",
        "top 10 slowest routes, one day":
            "SELECT service_name, http_route, avg(duration_ns) AS mean_ns, count(*) AS n FROM {spans} "
            "WHERE start_time > now() - INTERVAL '1 day' AND kind = 'SERVER' "
            "GROUP BY 1, 2 ORDER BY mean_ns DESC LIMIT 10",
    }
    return queries


def timed(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--keep", metavar="DIR",
                        help="load into DIR (emptied first) and keep it afterwards, to inspect the files")
    args = parser.parse_args()
    ensure_duckdb()
    import duckdb

    bin_path = binary()
    if args.keep:
        shutil.rmtree(args.keep, ignore_errors=True)
        Path(args.keep).mkdir(parents=True)
    with (contextlib.nullcontext(args.keep) if args.keep
          else tempfile.TemporaryDirectory(prefix="smolder-qbench-")) as data_dir:
        proc, http, loaded, load_seconds = load_history(bin_path, data_dir, args.spans)
        queries = typical_queries(http)
        duck = duckdb.connect()
        duck.execute("SET TimeZone = 'UTC'")
        root = Path(data_dir) / "parquet"
        # The files the manifest lists (replaced files linger for a while
        # before they are deleted).
        manifest = json.loads((root / "manifest.json").read_text())
        tables = {}
        for t in ("spans", "logs"):
            paths = ", ".join(f"'{root / f['path']}'" for f in manifest["files"] if f["table"] == t)
            tables[t] = f"read_parquet([{paths}], hive_partitioning = false)"

        print(f"# query benchmark, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs")
        print()
        print(f"loaded {loaded['spans']['items_acknowledged']} spans, {loaded['logs']['items_acknowledged']} log "
              f"records, {loaded['metrics']['items_acknowledged']} metric points in {load_seconds:.0f} s")
        print()
        print("| query | smolder (HTTP API) ms | DuckDB ms | ratio | rows (smolder / DuckDB) |")
        print("|---|---|---|---|---|")
        for name, template in queries.items():
            ours = template.format(spans="spans", logs="logs")
            theirs = template.format(**tables)
            rows = len(sql(http, ours)["rows"])
            duck_rows = duck.execute(theirs).fetch_arrow_table().num_rows
            smolder_s = timed(lambda: sql(http, ours), args.runs)
            duck_s = timed(lambda: duck.execute(theirs).fetch_arrow_table(), args.runs)
            print(f"| {name} | {smolder_s * 1e3:.1f} | {duck_s * 1e3:.1f} | {smolder_s / duck_s:.2f} | "
                  f"{rows} / {duck_rows} |", flush=True)

        print()
        print("| table | rows | Parquet bytes | bytes per row | OTLP protobuf bytes | Parquet / protobuf |")
        print("|---|---|---|---|---|---|")
        totals = [0, 0, 0]
        for table in ("spans", "logs", "metrics"):
            files = [f for f in manifest["files"] if f["table"] == table]
            rows = sum(f["rows"] for f in files)
            size = sum(f["bytes"] for f in files)
            sent = loaded[table]["bytes_sent"]
            totals = [totals[0] + rows, totals[1] + size, totals[2] + sent]
            print(f"| {table} | {rows} | {size} | {size / max(rows, 1):.1f} | {sent} | {size / sent:.1%} |")
        rows, size, sent = totals
        print(f"| all | {rows} | {size} | {size / max(rows, 1):.1f} | {sent} | {size / sent:.1%} |")
        print()
        print(f"{len(manifest['files'])} files after compaction")
        stop(proc)


if __name__ == "__main__":
    sys.exit(main())

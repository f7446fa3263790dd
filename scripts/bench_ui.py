#!/usr/bin/env python3
"""The web UI's speed: API latency behind the pages and the SLO overview's
render time with 1,000 SLOs.

Starts `smolder demo` (release build) on loopback with an empty SLO
directory, loads `--history` of generated telemetry into it (`smolder
loadgen --history`, every request unique: `--history-spans` spans, a quarter
as many log records, a twentieth as many metric points), then writes the
sample SLOs plus generated availability SLOs (1,000 in all) into the
directory and times their backfill over that history. With the demo's live
traffic and its incidents going on, it then

1. calls every API the pages call (`--requests` times each, one at a time)
   and reports p50 / p95 / max per endpoint;
2. loads the SLO overview in headless Chromium (Debian `chromium`, driven by
   playwright-core from ui/node_modules) `--runs` times and reports the time
   from navigation start until the table is painted (it holds every row; the
   rows in view are in the DOM), then the time a jump to the last row takes.

Usage: scripts/bench_ui.py [--slos 1000] [--history 30d] [--history-spans 10000000]
                           [--requests 100] [--runs 10] [--warmup 60]
(`--history 0` skips the history: the SLOs see only the demo's live traffic.)
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVICES = [("frontend", "/"), ("catalog", "/api/products"), ("checkout", "/api/checkout"),
            ("payment", "/charge"), ("inventory", "/reserve")]

SLO = """apiVersion: openslo/v1
kind: SLO
metadata:
  name: {id}
  labels:
    team: team-{team}
spec:
  service: {service}
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: {target}
  indicator:
    metadata:
      name: {id}-sli
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = '{service}' AND kind = 'SERVER' AND status_code <> 'ERROR'"
        total:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = '{service}' AND kind = 'SERVER'"
"""


def smolder_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.path.join(target, "release", "smolder")
    if not os.path.exists(binary):
        sys.exit(f"{binary} is missing: run `cargo build --release -p smolder` first")
    return binary


def get(base, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data,
                                 headers={"content-type": "application/json"} if data else {})
    started = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        payload = r.read()
    return time.perf_counter() - started, json.loads(payload)


def write_slos(slo_dir, count):
    """The sample SLOs plus generated availability SLOs, `count` in all."""
    for name in os.listdir(os.path.join(ROOT, "sample-data", "slos")):
        shutil.copy(os.path.join(ROOT, "sample-data", "slos", name), slo_dir)
    samples = 9  # SLOs in the sample files
    docs = []
    for i in range(count - samples):
        service, _ = SERVICES[i % len(SERVICES)]
        docs.append(SLO.format(id=f"bench-{i:04d}", team=i % 20, service=service,
                               target=[0.99, 0.995, 0.999][i % 3]))
    # Written under another name first: the server reloads whole files.
    path = os.path.join(slo_dir, "generated.yaml")
    with open(path + ".tmp", "w") as f:
        f.write("---\n".join(docs))
    os.replace(path + ".tmp", path)


def load_history(grpc, history, spans):
    """Generated telemetry spread over the past `history`, every request unique."""
    batch = 512
    started = time.time()
    requests = {"traces": max(1, spans // batch), "logs": max(1, spans // batch // 4),
                "metrics": max(1, spans // batch // 20)}
    for signal, count in requests.items():
        out = subprocess.run(
            [smolder_binary(), "loadgen", "--endpoint", grpc, "--protocol", "grpc", "--signal", signal,
             "--batch-size", str(batch), "--concurrency", "4", "--requests", str(count),
             "--history", history, "--duration", "30m", "--retry", "--json"],
            check=True, capture_output=True, text=True)
        report = json.loads(out.stdout)
        print(f"  {signal}: {report['items_acknowledged']:,} acknowledged, {report['items_rejected']:,} rejected", flush=True)
    print(f"{history} of history loaded in {time.time() - started:.0f} s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slos", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=60, help="seconds of traffic before measuring")
    ap.add_argument("--history", default="30d", help="stretch of generated history to load first (0: none)")
    ap.add_argument("--history-spans", type=int, default=10_000_000)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="smolder-ui-bench-")
    slo_dir = os.path.join(work, "slos")
    os.makedirs(slo_dir)
    proc = subprocess.Popen(
        [smolder_binary(), "demo", "--data-dir", os.path.join(work, "data"), "--slo-dir", slo_dir,
         "--slo-interval", "10s", "--http-addr", "127.0.0.1:0",
         # The history must outlive the default retention of traces and logs (7 days).
         "--retention-traces", "35d", "--retention-logs", "35d", "--retention-metrics", "35d",
         "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = grpc = None
        for line in proc.stdout:
            if line.startswith("listening otlp_grpc="):
                grpc = "http://" + line.split("=", 1)[1].strip()
            if line.startswith("listening http="):
                base = "http://" + line.split("=", 1)[1].strip()
                break
        if base is None or grpc is None:
            sys.exit("smolder demo did not start")
        # Keep draining the demo's output so it never blocks on a full pipe.
        import threading
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        print(f"smolder demo at {base}", flush=True)
        if args.history not in ("0", "0s", "0d"):
            load_history(grpc, args.history, args.history_spans)
        write_slos(slo_dir, args.slos)
        started = time.time()
        # The first evaluation of every SLO (their backfill) must be done.
        deadline = started + 3600
        while True:
            _, slos = get(base, "/api/v1/slos")
            listed = len(slos["slos"])
            done = sum(1 for s in slos["slos"] if s["backfill"]["done"])
            if listed >= args.slos and done == listed:
                break
            if time.time() > deadline:
                sys.exit(f"{done} of {listed} SLOs backfilled after an hour")
            time.sleep(2)
        print(f"{listed} SLOs created and backfilled over the history in {time.time() - started:.0f} s; "
              f"{args.warmup} s of live traffic…", flush=True)
        time.sleep(args.warmup)
        _, alerts = get(base, "/api/v1/alerts")
        firing = [a for a in alerts["alerts"] if a["status"] == "firing"]
        print(f"{listed} SLOs listed, {len(firing)} alerts firing", flush=True)
        slo = "checkout-availability"
        _, traces = get(base, "/api/v1/traces?status=ERROR&limit=1")
        trace_id = traces["rows"][0][0] if traces["rows"] else "0" * 32
        now = time.time()
        calls = {
            "SLO list (overview)": ("/api/v1/slos?instances=true", None),
            "active alerts (brief, overview)": ("/api/v1/alerts?brief=true", None),
            "active alerts (alerts page)": ("/api/v1/alerts", None),
            "SLO detail": (f"/api/v1/slos/{slo}", None),
            "SLO series, period": (f"/api/v1/slos/{slo}/series", None),
            "SLO series, 1 h": (f"/api/v1/slos/{slo}/series?from={now - 3600}&to={now}", None),
            "sparkline series": (f"/api/v1/slos/bench-0001/series?from={now - 3600}&to={now}&step=75s", None),
            "causes (5 m)": (f"/api/v1/slos/{slo}/causes?window=300s", None),
            "alert history": (f"/api/v1/alerts/history?slo={slo}&limit=50", None),
            "notifications": ("/api/v1/notifications?limit=100", None),
            "silences": ("/api/v1/silences", None),
            "trace search": (f"/api/v1/traces?service=checkout&from={now - 3600}&to={now}&limit=200", None),
            "trace by id, all stored data": (f"/api/v1/traces/{trace_id}", None),
            "trace by id, hours around it (UI links)": (f"/api/v1/traces/{trace_id}?from={now - 3600}&to={now + 3600}", None),
            "log search": (f"/api/v1/logs?severity=WARN&from={now - 3600}&to={now}&limit=500", None),
            "trace search, 30 days": (f"/api/v1/traces?service=checkout&from={now - 30 * 86400}&to={now}&limit=200", None),
            "trace search, next page (offset 50)": (f"/api/v1/traces?from={now - 3600}&to={now}&limit=50&offset=50", None),
            "trace search, longest first, 1 h": (f"/api/v1/traces?from={now - 3600}&to={now}&limit=50&sort=longest", None),
            "trace search, longest first, 30 days": (f"/api/v1/traces?service=checkout&from={now - 30 * 86400}&to={now}&limit=50&sort=longest", None),
            "services (search form), 1 h": (f"/api/v1/services?from={now - 3600}&to={now}", None),
            "services (search form), 30 days": (f"/api/v1/services?from={now - 30 * 86400}&to={now}", None),
            "log search, 1,000 records (the page)": (f"/api/v1/logs?from={now - 3600}&to={now}&limit=1000", None),
            "log volume per severity, 1 h (the page)": ("/api/v1/sql", {"sql":
                f"SELECT date_bin(INTERVAL '60 seconds', time) AS t, CASE WHEN severity_number >= 17 THEN 'error' "
                f"WHEN severity_number >= 13 THEN 'warn' ELSE 'info and below' END AS level, count(*) AS records "
                f"FROM logs WHERE time >= to_timestamp({int(now) - 3600}) AND time < to_timestamp({int(now)}) GROUP BY 1, 2 ORDER BY 1"}),
            "log search, 30 days": (f"/api/v1/logs?severity=WARN&q=timeout&from={now - 30 * 86400}&to={now}&limit=500", None),
            "SLO series, 30 days of a bench SLO": (f"/api/v1/slos/bench-0001/series?from={now - 30 * 86400}&to={now}", None),
            "status": ("/api/v1/status", None),
            "Explore example (errors/service/min)": ("/api/v1/sql", {"sql":
                "SELECT date_bin(INTERVAL '1 minute', start_time) AS minute, service_name, "
                "count(*) FILTER (WHERE status_code = 'ERROR') AS errors FROM spans "
                "WHERE kind = 'SERVER' AND start_time > now() - INTERVAL '1 hour' GROUP BY 1, 2 ORDER BY 1, 2"}),
            "Explore: errors/service/hour, 30 days": ("/api/v1/sql", {"sql":
                "SELECT date_bin(INTERVAL '1 hour', start_time) AS hour, service_name, "
                "count(*) FILTER (WHERE status_code = 'ERROR') AS errors FROM spans "
                "WHERE kind = 'SERVER' AND start_time > now() - INTERVAL '30 days' GROUP BY 1, 2 ORDER BY 1, 2"}),
        }
        print(f"\nAPI latency, {args.requests} sequential requests each (ms):")
        print(f"{'endpoint':40} {'p50':>8} {'p95':>8} {'max':>8}")
        worst = 0.0
        for name, (path, body) in calls.items():
            times = []
            for _ in range(args.requests):
                t, _ = get(base, path, body)
                times.append(t * 1000)
            times.sort()
            p95 = times[int(0.95 * (len(times) - 1))]
            worst = max(worst, p95)
            print(f"{name:40} {statistics.median(times):8.1f} {p95:8.1f} {times[-1]:8.1f}", flush=True)
        print(f"slowest p95: {worst:.1f} ms")

        out = subprocess.run(["node", os.path.join(ROOT, "ui", "e2e", "bench.mjs"), str(args.slos), str(args.runs)],
                             env={**os.environ, "SMOLDER_URL": base}, cwd=os.path.join(ROOT, "ui"),
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            sys.exit(f"browser bench failed:\n{out.stdout}\n{out.stderr}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        runs = sorted(result["runs_ms"])
        scrolls = sorted(result["scroll_ms"])
        print(f"\nSLO overview with {args.slos} SLOs in Chromium, navigation start → table painted "
              f"({len(runs)} loads): median {statistics.median(runs):.0f} ms, max {runs[-1]:.0f} ms; "
              f"{result['dom_rows']} rows in the DOM; jump to the last row: median "
              f"{statistics.median(scrolls):.0f} ms, max {scrolls[-1]:.0f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

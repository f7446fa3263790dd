#!/usr/bin/env python3
"""The web UI's speed: API latency behind the pages and the SLO overview's
render time with 1,000 SLOs.

Starts `smolder demo` (release build) on loopback with the sample SLOs plus
generated availability SLOs (1,000 in all) and the demo's sample traffic,
waits for its incident to page, then

1. calls every API the pages call (`--requests` times each, one at a time)
   and reports p50 / p95 / max per endpoint;
2. loads the SLO overview in headless Chromium (Debian `chromium`, driven by
   playwright-core from ui/node_modules) `--runs` times and reports the time
   from navigation start until all rows are painted.

Usage: scripts/bench_ui.py [--slos 1000] [--requests 100] [--runs 10] [--warmup 60]
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


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--slos", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=60, help="seconds of traffic before measuring")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="smolder-ui-bench-")
    slo_dir = os.path.join(work, "slos")
    os.makedirs(slo_dir)
    for name in os.listdir(os.path.join(ROOT, "sample-data", "slos")):
        shutil.copy(os.path.join(ROOT, "sample-data", "slos", name), slo_dir)
    samples = 9  # SLOs in the sample files
    with open(os.path.join(slo_dir, "generated.yaml"), "w") as f:
        docs = []
        for i in range(args.slos - samples):
            service, _ = SERVICES[i % len(SERVICES)]
            docs.append(SLO.format(id=f"bench-{i:04d}", team=i % 20, service=service,
                                   target=[0.99, 0.995, 0.999][i % 3]))
        f.write("---\n".join(docs))

    proc = subprocess.Popen(
        [smolder_binary(), "demo", "--data-dir", os.path.join(work, "data"), "--slo-dir", slo_dir,
         "--slo-interval", "10s", "--http-addr", "127.0.0.1:0",
         "--otlp-grpc-addr", "127.0.0.1:0", "--otlp-http-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = None
        for line in proc.stdout:
            if line.startswith("listening http="):
                base = "http://" + line.split("=", 1)[1].strip()
                break
        if base is None:
            sys.exit("smolder demo did not start")
        # Keep draining the demo's output so it never blocks on a full pipe.
        import threading
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
        print(f"smolder demo at {base} with {args.slos} SLOs; {args.warmup} s of traffic…", flush=True)
        time.sleep(args.warmup)
        # The first evaluation of every SLO (their backfill) must be done.
        deadline = time.time() + 600
        while True:
            _, slos = get(base, "/api/v1/slos")
            listed = len(slos["slos"])
            if listed >= args.slos and all(s["backfill"]["done"] for s in slos["slos"]):
                break
            if time.time() > deadline:
                sys.exit(f"only {listed} SLOs evaluated after 10 minutes")
            time.sleep(2)
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
            "trace by id": (f"/api/v1/traces/{trace_id}", None),
            "log search": (f"/api/v1/logs?severity=WARN&from={now - 3600}&to={now}&limit=500", None),
            "status": ("/api/v1/status", None),
            "Explore example (errors/service/min)": ("/api/v1/sql", {"sql":
                "SELECT date_bin(INTERVAL '1 minute', start_time) AS minute, service_name, "
                "count(*) FILTER (WHERE status_code = 'ERROR') AS errors FROM spans "
                "WHERE kind = 'SERVER' AND start_time > now() - INTERVAL '1 hour' GROUP BY 1, 2 ORDER BY 1, 2"}),
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
        runs = sorted(json.loads(out.stdout.strip().splitlines()[-1])["runs_ms"])
        print(f"\nSLO overview with {args.slos} SLOs in Chromium, navigation start → all rows painted "
              f"({len(runs)} loads): median {statistics.median(runs):.0f} ms, max {runs[-1]:.0f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

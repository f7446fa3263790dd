#!/usr/bin/env python3
"""The Alerts page with 1,000 firing alerts, in headless Chromium.

Starts a release `smolder serve` on loopback ephemeral ports with an SLO
directory of `--slos` availability SLOs (one per route of one service, 99 %),
sends traffic in which every route fails half its requests, waits until every
SLO's page alert fires, then loads /alerts `--runs` times (ui/e2e/bench.mjs,
mode `alerts`) and reports the time from navigation start until the grouped
list is painted, and the DOM size.

Usage: scripts/bench_alerts_ui.py [--slos 1000] [--runs 10]
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
import urllib.request

import bench_ui  # same directory: its smolder_binary() and get()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SLO = """apiVersion: openslo/v1
kind: SLO
metadata:
  name: route-{i:04d}
  labels:
    team: team-{team}
spec:
  service: shop
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.99
  indicator:
    metadata:
      name: route-{i:04d}-ok
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = 'shop' AND http_route = '/r{i}' AND status_code <> 'ERROR'"
        total:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = 'shop' AND http_route = '/r{i}'"
"""


def get(base, path):
    return bench_ui.get(base, path)[1]


def spans_json(slos, per_route, now_ns):
    """OTLP/JSON spans: `per_route` server spans for each route, half failing."""
    spans = []
    n = 0
    for i in range(slos):
        for k in range(per_route):
            n += 1
            start = now_ns - (k + 1) * 1_000_000_000
            spans.append({
                "traceId": f"{n:032x}", "spanId": f"{n:016x}", "name": f"GET /r{i}", "kind": 2,
                "startTimeUnixNano": str(start), "endTimeUnixNano": str(start + 5_000_000),
                "attributes": [{"key": "http.route", "value": {"stringValue": f"/r{i}"}}],
                "status": {"code": 2 if k % 2 == 0 else 1},
            })
    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shop"}}]},
        "scopeSpans": [{"spans": spans}],
    }]}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="smolder-alerts-bench-")
    slo_dir = os.path.join(work, "slos")
    os.makedirs(slo_dir)
    with open(os.path.join(slo_dir, "routes.yaml"), "w") as f:
        f.write("---\n".join(SLO.format(i=i, team=i % 20) for i in range(args.slos)))
    proc = subprocess.Popen(
        [bench_ui.smolder_binary(), "serve", "--data-dir", os.path.join(work, "data"), "--slo-dir", slo_dir,
         "--slo-interval", "2s", "--http-addr", "127.0.0.1:0", "--otlp-grpc-addr", "127.0.0.1:0",
         "--otlp-http-addr", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        addrs = {}
        while len(addrs) < 3:
            line = proc.stdout.readline()
            if not line:
                sys.exit("the server stopped")
            for part in line.split():
                if "=" in part and line.startswith("listening"):
                    k, v = part.split("=", 1)
                    addrs[k] = v
        base = f"http://{addrs['http']}"
        body = json.dumps(spans_json(args.slos, 40, time.time_ns())).encode()
        req = urllib.request.Request(f"http://{addrs['otlp_http']}/v1/traces", data=body,
                                     headers={"content-type": "application/json"})
        urllib.request.urlopen(req, timeout=60).read()
        deadline = time.time() + 600
        while True:
            firing = [a for a in get(base, "/api/v1/alerts")["alerts"] if a["status"] == "firing"]
            if len(firing) >= args.slos:
                break
            if time.time() > deadline:
                sys.exit(f"only {len(firing)} alerts firing after 10 minutes")
            time.sleep(2)
        print(f"{len(firing)} alerts firing", flush=True)
        out = subprocess.run(["node", os.path.join(ROOT, "ui", "e2e", "bench.mjs"), str(args.slos), str(args.runs), "alerts"],
                             env={**os.environ, "SMOLDER_URL": base}, cwd=os.path.join(ROOT, "ui"),
                             capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            sys.exit(f"browser bench failed:\n{out.stdout}\n{out.stderr}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        runs = sorted(result["runs_ms"])
        print(f"Alerts page with {len(firing)} firing alerts in Chromium, navigation start → grouped list painted "
              f"({len(runs)} loads): median {statistics.median(runs):.0f} ms, max {runs[-1]:.0f} ms; "
              f"{result['dom_nodes']} DOM nodes, page height {result['height_px']} px")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

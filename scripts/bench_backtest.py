#!/usr/bin/env python3
"""Backtest benchmark (issue 21): `POST /api/v1/slos/backtest` over 30 days.

1. Starts a release `smolder serve` on loopback ephemeral ports with a fresh
   data directory and loads 30 days of generated spans with `smolder loadgen
   --history 720h` (every request unique; 10 million spans by default), stops
   it (the shutdown flushes) and starts it again, so every row is read from
   Parquet, and lets compaction settle.
2. Creates an availability SLO of the `checkout` service through the API and
   waits for its backfill (its rollups then exist).
3. Times, each the median of --runs after one warm-up, over the last 30 days:
   * the backtest of that SLO (its stored rollups are read);
   * the backtest of a new SLO (another indicator: every bucket is rolled up
     from the spans);
   * 100 policy variants of the first (10 objectives × 10 factor scalings) in
     one request;
   * the 30-day burn chart PNG of the first, and the month's SLO report;
   * with a budget exclusion of 2 hours every day added to the first SLO
     (issue 21, item 3): the time the API takes to add it (the figures are
     recomputed before it answers) and the backtest of the first again.

Usage: scripts/bench_backtest.py [--spans 10000000] [--runs 3]
Every load is bounded in requests and time.
"""

import argparse
import json
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from bench_ingest import binary, start_server
from bench_query import stop

DAY = 86_400

SLO = """
apiVersion: openslo/v1
kind: SLO
metadata:
  name: {name}
spec:
  service: checkout
  indicator:
    metadata:
      name: {name}-ok
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = 'checkout' AND {good}"
        total:
          metricSource:
            type: smolder
            spec:
              table: spans
              filter: "service_name = 'checkout'"
  timeWindow:
    - duration: 30d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.999
"""

SERVER_FLAGS = ("--buffer-limit", "2GiB", "--retention-traces", "40d")


def request(http, method, path, body=None, content_type="application/json", timeout=600):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(f"http://{http}{path}", data=data, method=method,
                                 headers={"content-type": content_type})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as e:
        return e.code, json.load(e)


def load(bin_path, data_dir, spans):
    batch = 512
    requests = max(1, spans // batch)
    proc, addrs = start_server(bin_path, data_dir, *SERVER_FLAGS)
    grpc = "http://" + addrs["otlp_grpc"]
    t0 = time.time()
    subprocess.run(
        [bin_path, "loadgen", "--endpoint", grpc, "--protocol", "grpc", "--signal", "traces",
         "--batch-size", str(batch), "--concurrency", "4", "--requests", str(requests),
         "--history", "720h", "--duration", "30m", "--retry", "--json"],
        check=True, capture_output=True, text=True,
    )
    loaded = time.time() - t0
    stop(proc)
    proc, addrs = start_server(bin_path, data_dir, *SERVER_FLAGS)
    return proc, addrs["http"], loaded


def timed(fn, runs):
    fn()  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        answer = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), answer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    bin_path = str(binary())
    with tempfile.TemporaryDirectory(prefix="smolder-bench-") as data_dir:
        proc, http, load_seconds = load(bin_path, data_dir, args.spans)
        try:
            total = request(http, "POST", "/api/v1/sql", json.dumps({"sql": "SELECT count(*) FROM spans"}))[1]
            print(f"loaded {total['rows'][0][0]} spans in {load_seconds:.0f} s")
            existing = SLO.format(name="bench-checkout", good="status_code <> 'ERROR'")
            status, answer = request(http, "PUT", "/api/v1/slos/bench-checkout", existing, "application/yaml")
            assert status in (200, 201), answer
            t0 = time.time()
            while True:
                status, slo = request(http, "GET", "/api/v1/slos/bench-checkout")
                if slo["backfill"]["done"]:
                    break
                if time.time() - t0 > 1800:
                    raise SystemExit(f"backfill not done after 30 minutes: {slo['backfill']}")
                time.sleep(1)
            print(f"SLO backfilled in {time.time() - t0:.1f} s")
            now = time.time()
            span = {"from": now - 30 * DAY, "to": now}

            def backtest(body):
                status, answer = request(http, "POST", "/api/v1/slos/backtest", json.dumps({**span, **body}))
                assert status == 200, answer
                return answer

            stored, a = timed(lambda: backtest({"slo": existing}), args.runs)
            print(f"existing SLO, 30 days: {stored * 1000:.0f} ms; {len(a['alerts'])} alerts, "
                  f"source {a['source']}, stats {a['stats']}")
            new = SLO.format(name="bench-new", good="duration_ns < 800000000")
            scanned, a = timed(lambda: backtest({"slo": new}), args.runs)
            print(f"new SLO (scan), 30 days: {scanned * 1000:.0f} ms; {len(a['alerts'])} alerts, "
                  f"source {a['source']}, stats {a['stats']}")
            variants = [{"objective": o, "factors": [f * s for f in (14.4, 6, 3, 1)]}
                        for o in (0.99, 0.995, 0.997, 0.998, 0.999, 0.9993, 0.9995, 0.9997, 0.9998, 0.9999)
                        for s in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0, 3.0)]
            compared, a = timed(lambda: backtest({"slo": existing, "variants": variants}), args.runs)
            counts = sorted(sum(v["by_severity"].values()) for v in a["variants"])
            print(f"100 variants, 30 days: {compared * 1000:.0f} ms; alerts per variant "
                  f"min {counts[0]} median {counts[len(counts) // 2]} max {counts[-1]}")

            # The burn chart a notification links to, over 30 days, and the
            # month's report of the SLOs (issue 21, items 4 and 6).
            def get_bytes(path):
                with urllib.request.urlopen(f"http://{http}{path}", timeout=600) as response:
                    assert response.status == 200
                    return response.read()

            chart_path = (f"/api/v1/slos/bench-checkout/chart.png?long=1h&short=5m&factor=14.4"
                          f"&from={int(now - 30 * DAY)}&to={int(now)}")
            charted, png = timed(lambda: get_bytes(chart_path), args.runs)
            print(f"burn chart PNG, 30 days: {charted * 1000:.0f} ms, {len(png)} bytes")
            reported, r = timed(lambda: request(http, "GET", "/api/v1/reports/slos?period=month")[1], args.runs)
            print(f"month's report of {len(r['slos'])} SLOs: {reported * 1000:.0f} ms")
            # A daily maintenance excluded from the first SLO's budget.
            exclusion = json.dumps({"start": int(now - 30 * DAY), "duration": "2h", "rrule": "FREQ=DAILY",
                                    "reason": "nightly maintenance (benchmark)"})
            t0 = time.time()
            status, made = request(http, "POST", "/api/v1/slos/bench-checkout/exclusions", exclusion,
                                   "application/json")
            excluding = time.time() - t0
            assert status == 201, made
            print(f"adding a daily exclusion (30 days masked, figures recomputed): {excluding * 1000:.0f} ms")
            excluded, a = timed(lambda: backtest({"slo": existing}), args.runs)
            print(f"existing SLO with the exclusion, 30 days: {excluded * 1000:.0f} ms; {len(a['alerts'])} alerts")
            print(json.dumps({"spans": total["rows"][0][0], "existing_ms": stored * 1000,
                              "new_ms": scanned * 1000, "variants_ms": compared * 1000,
                              "chart_ms": charted * 1000, "report_ms": reported * 1000,
                              "add_exclusion_ms": excluding * 1000, "excluded_ms": excluded * 1000}))
        finally:
            stop(proc)


if __name__ == "__main__":
    main()

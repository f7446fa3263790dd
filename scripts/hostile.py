#!/usr/bin/env python3
"""Runs the hostile corpus (issue 17) against a running smolder and reports
what each request got, whether the server stayed up, the p99 and worst
latency of /healthz, of a one-span export and of an API the UI calls, probed
all the while the corpus ran, and the server's peak RSS.

    smolder serve --data-dir /tmp/h &          # or any running server
    scripts/hostile.py --api http://127.0.0.1:8080 --otlp http://127.0.0.1:4318 \
        [--pid PID]                            # for the peak RSS (Linux)

Only loopback addresses are accepted: this sends requests meant to hurt.
Every request is bounded in size and count; the whole run takes about a
minute. Exit status 1 when the server stopped answering.
"""

import argparse
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def request(url, method="GET", body=None, headers=None, timeout=120):
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    started = time.monotonic()
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace"), time.monotonic() - started
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace"), time.monotonic() - started
    except Exception as e:  # connection refused, reset, timeout
        return None, str(e), time.monotonic() - started


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def corpus(api, otlp):
    chain = lambda term, op, n: op.join([term] * n)
    sql = lambda q: (f"{api}/api/v1/sql", "POST", json.dumps({"sql": q}).encode(),
                     {"content-type": "application/json"})
    slo = lambda name, flt, window="30d", extra="": (
        f"{api}/api/v1/slos/{name}", "PUT", f"""
apiVersion: openslo/v1
kind: SLO
metadata: {{name: {name}}}
spec:
  service: shop
  indicator:
    metadata: {{name: {name}-sli}}
    spec:
      ratioMetric:
        counter: true
        good: {{metricSource: {{type: smolder, spec: {{table: spans, filter: {json.dumps(flt)}}}}}}}
        total: {{metricSource: {{type: smolder, spec: {{table: spans, filter: "true"}}}}}}
  timeWindow: [{{duration: {window}, isRolling: true}}]
  budgetingMethod: Occurrences
  objectives: [{{target: 0.99}}]
{extra}""".encode(), {"content-type": "application/yaml"})
    group = json.dumps({chain("1", "+", 2500): "x"})
    inject = json.dumps({"CAST((SELECT max(body) FROM logs) AS INT)": "x"})
    # ExportLogsServiceRequest{resource_logs{scope_logs{2,000,000 empty log_records}}}
    def field(number, body):
        n, head = len(body), bytes([(number << 3) | 2])
        while n >= 0x80:
            head += bytes([(n & 0x7F) | 0x80])
            n >>= 7
        return head + bytes([n]) + body
    empty_logs = field(1, field(2, b"\x12\x00" * 2_000_000))
    return [
        ("SQL 1+1+… 2,000 terms", sql("SELECT " + chain("1", "+", 2000))),
        ("SQL OR chain 2,000", sql("SELECT 1 WHERE " + chain("true", " OR ", 2000))),
        ("SQL AND true ×2,000", sql("SELECT 1 WHERE true" + " AND true" * 2000)),
        ("SQL UNION ALL ×5,000", sql(chain("SELECT 1", " UNION ALL ", 5000))),
        ("lpad 2 GiB", sql("SELECT length(lpad('x', 2147483647))")),
        ("range 1.5e9", sql("SELECT cardinality(range(0, 1500000000))")),
        ("repeat 1e9", sql("SELECT length(repeat('x', 1000000000))")),
        ("regexp over 1 MB", sql(r"SELECT regexp_count(repeat('a',1000000),'(\w|\d){1,200}\W')")),
        ("SLO OR filter 2,000", slo("deep", chain("status_code = 'ERROR'", " OR ", 2000))),
        ("SLO window 999999w", slo("huge", "status_code <> 'ERROR'", window="999999w")),
        ("SLO panicking filter", slo("panics", "length(repeat(name, 200000)) > 0 AND status_code = 'ERROR'")),
        ("SLO slow filter", slo("slow", r"regexp_count(repeat(name,300),'(\w|\d){1,200}\W') = 0")),
        ("causes deep key", (f"{api}/api/v1/slos/panics/causes?group=" + urllib.parse.quote(group), "GET", None, {})),
        ("causes injection", (f"{api}/api/v1/slos/panics/causes?group=" + urllib.parse.quote(inject), "GET", None, {})),
        ("series from -9e9", (f"{api}/api/v1/slos/panics/series?from=-9000000000", "GET", None, {})),
        ("silence 300000y", (f"{api}/api/v1/silences", "POST",
                             json.dumps({"matchers": ['slo="x"'], "duration": "300000y",
                                         "created_by": "mallory"}).encode(),
                             {"content-type": "application/json"})),
        ("span end < start", (f"{otlp}/v1/traces", "POST", json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [
            {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "x",
             "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1"}]}]}]}).encode(),
            {"content-type": "application/json"})),
        ("2e6 empty log records", (f"{otlp}/v1/logs", "POST", empty_logs,
                                   {"content-type": "application/x-protobuf"})),
    ]


def idle_connections(otlp, n):
    """Opens `n` connections to the OTLP/HTTP port and holds them; returns
    them (the caller closes them)."""
    u = urllib.parse.urlparse(otlp)
    held = []
    for _ in range(n):
        try:
            held.append(socket.create_connection((u.hostname, u.port), timeout=5))
        except OSError:
            break
    return held


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--api", default="http://127.0.0.1:8080")
    p.add_argument("--otlp", default="http://127.0.0.1:4318")
    p.add_argument("--pid", type=int, help="the server's pid, for its peak RSS")
    args = p.parse_args()
    for url in (args.api, args.otlp):
        host = urllib.parse.urlparse(url).hostname
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise SystemExit(f"{url}: only loopback servers are probed")

    stop = threading.Event()
    # What must stay fast while the corpus runs: the health check, a small
    # export (ingest) and an API the UI calls, each probed in its own thread.
    span = json.dumps({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "probe"}}]},
        "scopeSpans": [{"spans": [{"traceId": "5b8efff798038103d269b633813fc60c",
                                   "spanId": "eee19b7ec3c1b174", "name": "probe",
                                   "startTimeUnixNano": "0", "endTimeUnixNano": "0"}]}]}]})
    probes = {
        "/healthz": lambda: request(f"{args.api}/healthz", timeout=30),
        "ingest (1 span)": lambda: request(
            f"{args.otlp}/v1/traces", "POST",
            span.replace('"0"', f'"{time.time_ns()}"').encode(),
            {"content-type": "application/json"}, timeout=30),
        "UI API /api/v1/slos": lambda: request(f"{args.api}/api/v1/slos", timeout=30),
    }
    latencies = {name: [] for name in probes}
    failed = {name: 0 for name in probes}

    def probe(name):
        while not stop.is_set():
            status, _, took = probes[name]()
            if status == 200:
                latencies[name].append(took)
            else:  # e.g. the OTLP port full of idle connections
                failed[name] += 1
            time.sleep(0.05)

    probers = [threading.Thread(target=probe, args=(n,), daemon=True) for n in probes]
    for t in probers:
        t.start()
    down = False
    for name, (url, method, body, headers) in corpus(args.api, args.otlp):
        status, text, took = request(url, method, body, headers)
        print(f"{name:28} {status!s:>4} {took:6.2f}s  {text.strip()[:110]}")
        if status is None:
            down = True
    # More idle connections than a listener keeps (run the server with
    # --max-connections below 1,000 to see them refused), while the API and
    # an export must still answer.
    held = idle_connections(args.otlp, 1000)
    status, text, took = request(f"{args.api}/healthz")
    print(f"{'1,000 idle connections':28} {status!s:>4} {took:6.2f}s  /healthz while held ({len(held)} opened)")
    for c in held:
        c.close()
    time.sleep(5)  # a few SLO ticks over what was stored
    stop.set()
    for t in probers:
        t.join()
    status, _, _ = request(f"{args.api}/healthz")
    print()
    for name, seen in latencies.items():
        seen = sorted(seen) or [0.0]
        p99 = seen[min(len(seen) - 1, int(len(seen) * 0.99))]
        print(f"{name:24} {len(seen):5} answered, {failed[name]:3} failed  "
              f"p99 {p99 * 1e3:7.1f} ms  worst {seen[-1] * 1e3:7.1f} ms")
    print(f"server up: {status == 200}", end="")
    if args.pid:
        print(f"; peak RSS: {(rss_kib(args.pid) or 0) / 1024:.0f} MiB", end="")
    print()
    raise SystemExit(1 if down or status != 200 else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""SLO evaluation cost: smolder against Prometheus running Sloth's rules.

Runs `smolder slo bench` (release build) for N SLOs with 30 days of minute
rollups (and N span SLOs' rollup updates from stored spans), then gives a real Prometheus (Debian package) the equivalent job:
N SLOs' request and error counters, scraped every minute over the last three
days and a bit, backfilled with `promtool tsdb create-blocks-from openmetrics`,
and the recording and alert rules Sloth generates for each SLO (SLI error
ratios over 5m, 30m, 1h, 2h, 6h, 1d, 3d and 30d, the metadata rules, the
page and ticket alerts). Prometheus evaluates the rule groups every
--interval; the script reads `prometheus_rule_group_last_duration_seconds`
and reports the sum over all groups (the work of one evaluation round) and
the slowest group; at the end, the ratio of Prometheus's round to a whole
smolder tick (the rollup update after a minute of new data plus evaluation).

Usage: scripts/bench_slo.py [--slos 1000] [--days 3] [--interval 30s]
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smolder_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = os.path.join(target, "release", "smolder")
    if not os.path.exists(binary):
        sys.exit(f"{binary} missing: cargo build --release -p smolder")
    return binary


def write_openmetrics(path, slos, minutes, end):
    """Two counters per SLO, one sample a minute, ending at `end`."""
    start = end - minutes * 60
    with open(path, "w") as f:
        for family, share in (("requests", None), ("errors", 0.01)):
            f.write(f"# TYPE {family} counter\n")
            for s in range(slos):
                value = 0
                lines = []
                for m in range(minutes + 1):
                    n = 40 + (m * 7 + s * 13) % 23
                    value += n if share is None else max(0, round(n * share * (1 + (m + s) % 5)))
                    lines.append(f'{family}_total{{slo="s{s}"}} {value} {start + m * 60}\n')
                f.write("".join(lines))
        f.write("# EOF\n")


def sloth_rules(slos, objective=0.999):
    """Sloth's prometheus/v1 output for each SLO (v0.11 layout)."""
    budget = 1 - objective
    out = ["groups:"]
    for s in range(slos):
        labels = f'sloth_id: "svc-s{s}", sloth_service: "svc", sloth_slo: "s{s}"'
        sel = f'slo="s{s}"'
        out.append(f"- name: sloth-slo-sli-recordings-svc-s{s}")
        out.append("  rules:")
        for w in WINDOWS:
            out.append(f"  - record: slo:sli_error:ratio_rate{w}")
            out.append(
                f"    expr: (sum(rate(errors_total{{{sel}}}[{w}]))) / (sum(rate(requests_total{{{sel}}}[{w}])))"
            )
            out.append(f"    labels: {{{labels}, sloth_window: \"{w}\"}}")
        out.append("  - record: slo:sli_error:ratio_rate30d")
        out.append(
            f"    expr: sum_over_time(slo:sli_error:ratio_rate5m{{sloth_id=\"svc-s{s}\"}}[30d])"
            f" / ignoring (sloth_window) count_over_time(slo:sli_error:ratio_rate5m{{sloth_id=\"svc-s{s}\"}}[30d])"
        )
        out.append(f"    labels: {{{labels}, sloth_window: \"30d\"}}")
        out.append(f"- name: sloth-slo-meta-recordings-svc-s{s}")
        out.append("  rules:")
        meta = [
            ("slo:objective:ratio", f"vector({objective})"),
            ("slo:error_budget:ratio", f"vector(1-{objective})"),
            ("slo:time_period:days", "vector(30)"),
            (
                "slo:current_burn_rate:ratio",
                f'slo:sli_error:ratio_rate5m{{sloth_id="svc-s{s}"}} / on(sloth_id, sloth_slo, sloth_service) group_left slo:error_budget:ratio{{sloth_id="svc-s{s}"}}',
            ),
            (
                "slo:period_burn_rate:ratio",
                f'slo:sli_error:ratio_rate30d{{sloth_id="svc-s{s}"}} / on(sloth_id, sloth_slo, sloth_service) group_left slo:error_budget:ratio{{sloth_id="svc-s{s}"}}',
            ),
            (
                "slo:period_error_budget_remaining:ratio",
                f'1 - slo:period_burn_rate:ratio{{sloth_id="svc-s{s}"}}',
            ),
        ]
        for record, expr in meta:
            out.append(f"  - record: {record}")
            out.append(f"    expr: {expr}")
            out.append(f"    labels: {{{labels}}}")
        out.append(f"- name: sloth-slo-alerts-svc-s{s}")
        out.append("  rules:")
        for name, pairs in (
            ("page", [("5m", "1h", 14.4), ("30m", "6h", 6)]),
            ("ticket", [("2h", "1d", 3), ("6h", "3d", 1)]),
        ):
            terms = []
            for short, long, factor in pairs:
                terms.append(
                    f'(max(slo:sli_error:ratio_rate{short}{{sloth_id="svc-s{s}"}} > ({factor} * {budget})) without (sloth_window)'
                    f' and max(slo:sli_error:ratio_rate{long}{{sloth_id="svc-s{s}"}} > ({factor} * {budget})) without (sloth_window))'
                )
            out.append(f"  - alert: S{s}HighErrorRate{name.title()}")
            out.append(f"    expr: {' or '.join(terms)}")
            out.append(f"    labels: {{severity: {name}, sloth_severity: {name}}}")
    return "\n".join(out) + "\n"


def scrape(addr):
    with urllib.request.urlopen(f"http://{addr}/metrics", timeout=30) as r:
        return r.read().decode()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--slos", type=int, default=1000)
    p.add_argument("--days", type=float, default=3.0, help="days of raw samples in Prometheus (the longest rate window is 3d)")
    p.add_argument("--interval", default="30s", help="Prometheus rule evaluation interval")
    p.add_argument("--rounds", type=int, default=3, help="evaluation rounds to wait for")
    args = p.parse_args()
    for tool in ("prometheus", "promtool"):
        if subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True).returncode:
            sys.exit(f"{tool} missing: apt-get install prometheus")

    print(f"== smolder ({args.slos} SLOs, 30 days of minute rollups)", flush=True)
    out = subprocess.run([smolder_binary(), "slo", "bench", "--slos", str(args.slos),
                          "--update-slos", str(args.slos)], check=True, capture_output=True, text=True).stdout
    print(out, end="", flush=True)
    # A whole tick: the rollup update after a minute of new data plus the evaluation.
    evaluation = median_ms(out, "30-day period:")
    update = median_ms(out, "tick after 1 minute of new data:")
    tick = evaluation + update
    rounds = []

    print(f"\n== Prometheus ({args.slos} SLOs, Sloth rules, {args.days} days of 1-minute samples)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        end = int(time.time()) - 60
        minutes = int(args.days * 1440) + 10
        om = os.path.join(tmp, "data.om")
        t = time.time()
        write_openmetrics(om, args.slos, minutes, end)
        data = os.path.join(tmp, "tsdb")
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", om, data], check=True, stdout=subprocess.DEVNULL)
        os.remove(om)
        print(f"  backfilled {2 * args.slos * (minutes + 1)} samples in {time.time() - t:.0f} s", flush=True)
        rules = os.path.join(tmp, "rules.yml")
        with open(rules, "w") as f:
            f.write(sloth_rules(args.slos))
        subprocess.run(["promtool", "check", "rules", rules], check=True, stdout=subprocess.DEVNULL)
        config = os.path.join(tmp, "prometheus.yml")
        with open(config, "w") as f:
            f.write(f"global:\n  evaluation_interval: {args.interval}\nrule_files:\n  - {rules}\n")
        addr = f"127.0.0.1:{free_port()}"
        proc = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data}",
             "--storage.tsdb.retention.time=3650d", f"--web.listen-address={addr}"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "prometheus.log"), "w"),
        )
        try:
            deadline = time.time() + 600
            rounds_seen = 0
            last_sum = None
            while time.time() < deadline and rounds_seen < args.rounds:
                time.sleep(5)
                if proc.poll() is not None:
                    sys.exit("prometheus exited:\n" + open(os.path.join(tmp, "prometheus.log")).read()[-3000:])
                try:
                    text = scrape(addr)
                except OSError:
                    continue
                durations = [
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("prometheus_rule_group_last_duration_seconds{")
                ]
                evals = [
                    float(line.rsplit(" ", 1)[1])
                    for line in text.splitlines()
                    if line.startswith("prometheus_rule_evaluations_total{")
                ]
                if len(durations) < 3 * args.slos or not evals or min(evals) == 0:
                    continue
                total = sum(durations)
                if total != last_sum:
                    rounds_seen += 1
                    last_sum = total
                    rounds.append(total * 1e3)
                    print(
                        f"  round {rounds_seen}: {len(durations)} groups, sum of group durations "
                        f"{total * 1e3:.0f} ms, slowest group {max(durations) * 1e3:.1f} ms",
                        flush=True,
                    )
                    time.sleep(float(args.interval.rstrip("s")))
        finally:
            proc.terminate()
            proc.wait()
    if rounds:
        print(f"\nwhole smolder tick (update after 1 minute + evaluation): {tick:.1f} ms; "
              f"Prometheus round: {min(rounds):.0f} – {max(rounds):.0f} ms; "
              f"smolder {min(rounds) / tick:.0f} – {max(rounds) / tick:.0f}× cheaper", flush=True)


def median_ms(report, label):
    """The `median N ms` figure of the report line starting with `label`."""
    for line in report.splitlines():
        line = line.strip()
        if line.startswith(label):
            return float(line.split("median", 1)[1].split("ms", 1)[0])
    sys.exit(f"no {label!r} line in smolder's report:\n{report}")


if __name__ == "__main__":
    main()

"""Sends a known set of traces, metrics and logs to smolder with the
OpenTelemetry Python SDK, through one exporter, and prints what it sent as JSON.

Usage: export.py --protocol grpc|http/protobuf|http/json --endpoint URL --run-id ID

An https:// endpoint is reached over TLS, configured the standard way: the
OTEL_EXPORTER_OTLP_CERTIFICATE, OTEL_EXPORTER_OTLP_CLIENT_KEY and
OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE environment variables.

The Rust end-to-end test (tests/tests/python_sdk.rs) runs this script and then
checks through smolder's SQL API that exactly this telemetry arrived.
"""

import argparse
import json
import sys

from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode


def exporters(protocol, endpoint):
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from grpc import Compression

        kw = dict(endpoint=endpoint, compression=Compression.Gzip)
        if endpoint.startswith("http://"):
            kw["insecure"] = True
        # With https:// the exporter checks the server against
        # OTEL_EXPORTER_OTLP_CERTIFICATE and presents OTEL_EXPORTER_OTLP_CLIENT_KEY
        # and OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE, as the specification says.
        return OTLPSpanExporter(**kw), OTLPMetricExporter(**kw), OTLPLogExporter(**kw)
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        c = Compression.Gzip
        return (
            OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces", compression=c),
            OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics", compression=c),
            OTLPLogExporter(endpoint=f"{endpoint}/v1/logs", compression=c),
        )
    if protocol == "http/json":
        from opentelemetry.exporter.otlp.json.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.json.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter

        return (
            OTLPSpanExporter(endpoint=f"{endpoint}/v1/traces"),
            OTLPMetricExporter(endpoint=f"{endpoint}/v1/metrics"),
            OTLPLogExporter(endpoint=f"{endpoint}/v1/logs"),
        )
    raise SystemExit(f"unknown protocol {protocol}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--protocol", required=True)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--run-id", required=True)
    args = parser.parse_args()

    resource = Resource.create(
        {"service.name": f"pysdk-{args.run_id}", "service.version": "1.2.3", "run.id": args.run_id}
    )
    span_exporter, metric_exporter, log_exporter = exporters(args.protocol, args.endpoint)

    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    tracer = tracer_provider.get_tracer("smolder.e2e", "0.1.0")

    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    logger = logger_provider.get_logger("smolder.e2e.logs")

    # Export only at shutdown, so each series is exported exactly once.
    reader = PeriodicExportingMetricReader(metric_exporter, export_interval_millis=3_600_000)
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    meter = meter_provider.get_meter("smolder.e2e.metrics")

    with tracer.start_as_current_span(
        "GET /pay",
        kind=SpanKind.SERVER,
        attributes={"http.route": "/pay", "http.request.method": "GET", "http.response.status_code": 500, "retries": 2},
    ) as root:
        root.add_event("charge.attempt", {"attempt": 1})
        root.set_status(Status(StatusCode.ERROR, "card declined"))
        logger.emit(
            body="charge failed for order 42",
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            attributes={"order.id": 42},
        )
        with tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT, attributes={"db.system": "postgresql"}):
            pass
    root_ctx = root.get_span_context()
    logger.emit(body="all done", severity_number=SeverityNumber.INFO, severity_text="INFO")

    counter = meter.create_counter("e2e.requests", unit="{request}")
    for route in ["/pay", "/pay", "/cart"]:
        counter.add(1, {"http.route": route})
    histogram = meter.create_histogram("e2e.duration", unit="s")
    for v in [0.004, 0.02, 0.3]:
        histogram.record(v, {"http.route": "/pay"})
    gauge = meter.create_gauge("e2e.queue.depth")
    gauge.set(17, {"queue": "orders"})

    tracer_provider.shutdown()
    logger_provider.shutdown()
    meter_provider.shutdown()

    json.dump(
        {
            "trace_id": format(root_ctx.trace_id, "032x"),
            "root_span_id": format(root_ctx.span_id, "016x"),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()

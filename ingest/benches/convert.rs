//! Decode + Arrow conversion per signal, against prost decoding alone (the
//! floor). Run: `cargo bench -p smolder-ingest --bench convert`.
//!
//! Spans are converted straight from the protobuf bytes (`convert_protobuf`,
//! which is the whole cost); logs and metrics are decoded with prost and then
//! converted (`decode_and_convert`). Each request holds 512 items from the
//! sample-data generator (spans carry about ten attributes each, like the
//! ingest target's workload).
//!
//! `dedup_new` is the retried-export filter on items it has not seen (every
//! export's path; a new tenant each iteration makes every key new),
//! `dedup_copies` on a retry of the same items.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use std::time::Duration;

use datafusion::arrow::record_batch::RecordBatch;
use smolder_common::{Table, Tenant};
use smolder_ingest::dedup::Dedup;
use smolder_ingest::{ExportRequest, convert};
use smolder_sample_data::Generator;

const ITEMS: usize = 512;

fn metrics_request(g: &mut Generator) -> ExportMetricsServiceRequest {
    let _ = g.requests(2_000, 60_000_000_000);
    g.metric_points(ITEMS)
}

fn dedup_benches(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    table: Table,
    batch: &RecordBatch,
) {
    const NOW: i64 = 1_700_000_000_000_000_000;
    let dedup = Dedup::open(Duration::from_secs(300), 2_000_000, None, NOW).unwrap();
    let mut n = 0u64;
    group.bench_function("dedup_new", |b| {
        b.iter(|| {
            n += 1;
            let tenant = Tenant::parse(&format!("t{n}")).unwrap();
            let f = dedup
                .filter(&tenant, table, black_box(batch.clone()), NOW)
                .unwrap();
            dedup.commit(f.reserved);
            f.duplicates
        })
    });
    let tenant = Tenant::default();
    let first = dedup.filter(&tenant, table, batch.clone(), NOW).unwrap();
    dedup.commit(first.reserved);
    group.bench_function("dedup_copies", |b| {
        b.iter(|| {
            let f = dedup
                .filter(&tenant, table, black_box(batch.clone()), NOW)
                .unwrap();
            dedup.commit(f.reserved);
            f.duplicates
        })
    });
}

fn bench(c: &mut Criterion) {
    let mut g = Generator::new(1, 1_700_000_000_000_000_000);
    let traces = g.spans(ITEMS).encode_to_vec();
    let logs = g.logs(ITEMS).encode_to_vec();
    let metrics_req = metrics_request(&mut g);
    let points = ExportRequest::Metrics(metrics_req.clone()).item_count();
    let metrics = metrics_req.encode_to_vec();

    let mut group = c.benchmark_group("spans");
    group.throughput(Throughput::Elements(ITEMS as u64));
    group.bench_function("decode", |b| {
        b.iter(|| ExportTraceServiceRequest::decode(black_box(&traces[..])).unwrap())
    });
    group.bench_function("convert_protobuf", |b| {
        b.iter(|| convert::spans_protobuf(black_box(&traces[..])).unwrap())
    });
    let span_batch = convert::spans_protobuf(&traces).unwrap().batch.unwrap();
    dedup_benches(&mut group, Table::Spans, &span_batch);
    group.finish();

    let mut group = c.benchmark_group("logs");
    group.throughput(Throughput::Elements(ITEMS as u64));
    group.bench_function("decode", |b| {
        b.iter(|| ExportLogsServiceRequest::decode(black_box(&logs[..])).unwrap())
    });
    let decoded = ExportLogsServiceRequest::decode(&logs[..]).unwrap();
    group.bench_function("convert", |b| {
        b.iter(|| convert::logs(black_box(&decoded)).unwrap())
    });
    group.bench_function("decode_and_convert", |b| {
        b.iter(|| {
            let r = ExportLogsServiceRequest::decode(black_box(&logs[..])).unwrap();
            convert::logs(&r).unwrap()
        })
    });
    let log_batch = convert::logs(&decoded).unwrap().batch.unwrap();
    dedup_benches(&mut group, Table::Logs, &log_batch);
    group.finish();

    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(points));
    group.bench_function("decode", |b| {
        b.iter(|| ExportMetricsServiceRequest::decode(black_box(&metrics[..])).unwrap())
    });
    let decoded = ExportMetricsServiceRequest::decode(&metrics[..]).unwrap();
    group.bench_function("convert", |b| {
        b.iter(|| convert::metrics(black_box(&decoded)).unwrap())
    });
    group.bench_function("decode_and_convert", |b| {
        b.iter(|| {
            let r = ExportMetricsServiceRequest::decode(black_box(&metrics[..])).unwrap();
            convert::metrics(&r).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

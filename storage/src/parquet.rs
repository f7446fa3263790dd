//! How batches become Parquet files: sorted by `service_name` and then time
//! (so that time and service filters prune row groups and pages well),
//! zstd-compressed, dictionary-encoded, with page-level statistics (and so a
//! page index) and a bloom filter on `trace_id`.
//!
//! Columns that dictionaries cannot shrink get encodings that can: span ids
//! (random hex text) `DELTA_LENGTH_BYTE_ARRAY`, which drops the per-value
//! length that plain encoding repeats, and nanosecond times
//! `DELTA_BINARY_PACKED`, which stores the small steps between sorted times
//! instead of whole 64-bit values.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, AsArray, Int64Array};
use datafusion::arrow::compute::{SortColumn, SortOptions, lexsort_to_indices, take_record_batch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::TimestampNanosecondType;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, Encoding, ZstdLevel};
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::SortingColumn;
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use smolder_common::{Table, Tenant};

use crate::partition_of;

/// The columns every file is sorted by, in order.
pub(crate) fn sort_key(table: Table) -> [&'static str; 2] {
    ["service_name", table.time_column()]
}

/// Writer settings for files of `table`.
pub(crate) fn writer_properties(table: Table, row_group_rows: usize) -> WriterProperties {
    let schema = table.schema();
    let sorting = sort_key(table)
        .iter()
        .map(|name| SortingColumn {
            column_idx: schema.index_of(name).expect("sort column exists") as i32,
            descending: false,
            nulls_first: true,
        })
        .collect();
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid zstd level"),
        ))
        .set_dictionary_enabled(true)
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_max_row_group_row_count(Some(row_group_rows.max(1)))
        .set_sorting_columns(Some(sorting));
    for field in schema.fields() {
        let column = ColumnPath::from(field.name().as_str());
        let encoding = match (field.name().as_str(), field.data_type()) {
            ("span_id" | "parent_span_id", _) => Encoding::DELTA_LENGTH_BYTE_ARRAY,
            // The spans of a trace in one service sit side by side (same
            // service, same moment): zstd finds each repeat in the plain
            // stream for a few bytes, where a dictionary index per span
            // costs two.
            ("trace_id", _) if table == Table::Spans => Encoding::DELTA_LENGTH_BYTE_ARRAY,
            (_, DataType::Timestamp(..)) => Encoding::DELTA_BINARY_PACKED,
            ("duration_ns", _) => Encoding::DELTA_BINARY_PACKED,
            _ => continue,
        };
        props = props
            .set_column_dictionary_enabled(column.clone(), false)
            .set_column_encoding(column, encoding);
    }
    if table == Table::Logs {
        // A trace's log records of one service lie apart: a dictionary holds
        // each id once. Parquet's default abandons the dictionary at 1 MiB
        // (some 29,000 ids) and writes the rest plain, which took a third
        // more bytes per record on a day of generated logs. 8 MiB holds
        // the ids of a default row group (128 Ki rows x 36 bytes).
        props = props.set_column_dictionary_page_size_limit(ColumnPath::from("trace_id"), 8 << 20);
    }
    if table.has_trace_id_bloom() {
        let column = ColumnPath::from("trace_id");
        props = props
            .set_column_bloom_filter_enabled(column.clone(), true)
            .set_column_bloom_filter_fpp(column.clone(), 0.01)
            .set_column_bloom_filter_max_ndv(column, row_group_rows as u64);
    }
    props.build()
}

/// Sorts a batch of `table` by (hour partition, service, time) and splits it
/// into one sorted batch per hour partition.
pub(crate) fn sort_and_split(
    table: Table,
    batch: &RecordBatch,
) -> Result<Vec<(i64, RecordBatch)>, ArrowError> {
    let [service, time] = sort_key(table);
    let times = batch
        .column_by_name(time)
        .ok_or_else(|| ArrowError::SchemaError(format!("no {time} column")))?;
    let partitions: ArrayRef = Arc::new(Int64Array::from_iter_values(
        times
            .as_primitive::<TimestampNanosecondType>()
            .values()
            .iter()
            .map(|t| partition_of(*t)),
    ));
    let services = batch
        .column_by_name(service)
        .ok_or_else(|| ArrowError::SchemaError(format!("no {service} column")))?;
    let options = Some(SortOptions::default());
    let indices = lexsort_to_indices(
        &[
            SortColumn {
                values: Arc::clone(&partitions),
                options,
            },
            SortColumn {
                values: Arc::clone(services),
                options,
            },
            SortColumn {
                values: Arc::clone(times),
                options,
            },
        ],
        None,
    )?;
    let sorted = take_record_batch(batch, &indices)?;
    let sorted_partitions = datafusion::arrow::compute::take(&partitions, &indices, None)?;
    let keys = sorted_partitions.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=keys.len() {
        if i == keys.len() || keys.value(i) != keys.value(start) {
            out.push((keys.value(start), sorted.slice(start, i - start)));
            start = i;
        }
    }
    Ok(out)
}

/// The smallest and largest time of a non-empty batch of `table`.
pub(crate) fn time_range(table: Table, batch: &RecordBatch) -> (i64, i64) {
    let times = batch
        .column_by_name(table.time_column())
        .expect("time column")
        .as_primitive::<TimestampNanosecondType>();
    let min = datafusion::arrow::compute::min(times).unwrap_or(0);
    let max = datafusion::arrow::compute::max(times).unwrap_or(0);
    (min, max)
}

/// Encodes sorted batches as one Parquet file.
pub(crate) fn encode(
    table: Table,
    batches: &[RecordBatch],
    row_group_rows: usize,
) -> Result<Vec<u8>, ParquetError> {
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(
        &mut out,
        table.schema(),
        Some(writer_properties(table, row_group_rows)),
    )?;
    for batch in batches {
        writer.write(batch)?;
    }
    writer.close()?;
    Ok(out)
}

/// The object-store path of a new file: the tenant's own prefix, then
/// Hive-style `date=` and `hour=` folders under the table, so external tools
/// can read them too; the name is the time it was written (Unix ms), the
/// writer's id and a random nonce, so writers sharing a bucket never pick
/// the same name.
pub(crate) fn file_path(
    tenant: &Tenant,
    table: Table,
    partition: i64,
    writer: &str,
    written_ms: i64,
    nonce: u32,
) -> String {
    let start = chrono::DateTime::from_timestamp(partition.div_euclid(1_000_000_000), 0)
        .unwrap_or_default();
    format!(
        "tenant={tenant}/{}/date={}/hour={}/{written_ms:013}-{writer}-{nonce:08x}.parquet",
        table.name(),
        start.format("%Y-%m-%d"),
        start.format("%H"),
    )
}

/// The writer id in a file's name (`None` for names from before writers:
/// `<id>-<nonce>.parquet`).
pub(crate) fn writer_of(path: &str) -> Option<&str> {
    let name = path.rsplit('/').next()?.strip_suffix(".parquet")?;
    let mut parts = name.split('-');
    let (_, writer, _) = (parts.next()?, parts.next()?, parts.next()?);
    Some(writer)
}

#[cfg(test)]
mod tests {
    use datafusion::parquet::arrow::arrow_reader::{
        ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
    };
    use datafusion::parquet::file::metadata::PageIndexPolicy;

    use super::*;
    use crate::HOUR_NS;
    use crate::testing::batch;

    #[test]
    fn batches_are_sorted_and_split_by_hour_and_round_trip() {
        let a = batch(Table::Spans, "b-service", &[HOUR_NS + 5, 7, HOUR_NS + 1]);
        let b = batch(Table::Spans, "a-service", &[9, 3]);
        let both =
            datafusion::arrow::compute::concat_batches(&Table::Spans.schema(), [&a, &b]).unwrap();
        let parts = sort_and_split(Table::Spans, &both).unwrap();
        assert_eq!(
            parts
                .iter()
                .map(|(p, b)| (*p, b.num_rows()))
                .collect::<Vec<_>>(),
            vec![(0, 3), (HOUR_NS, 2)]
        );
        let first = &parts[0].1;
        assert_eq!(time_range(Table::Spans, first), (3, 9));
        let times: Vec<i64> = first
            .column_by_name("start_time")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>()
            .values()
            .to_vec();
        assert_eq!(times, vec![3, 9, 7], "a-service first, then by time");

        let bytes = encode(Table::Spans, std::slice::from_ref(first), 2).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new_with_options(
            bytes::Bytes::from(bytes),
            ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required),
        )
        .unwrap();
        let metadata = Arc::clone(reader.metadata());
        assert_eq!(metadata.num_row_groups(), 2);
        assert!(metadata.column_index().is_some(), "page index written");
        let read: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
        let read =
            datafusion::arrow::compute::concat_batches(&Table::Spans.schema(), &read).unwrap();
        assert_eq!(read, *first, "schema and rows survive the round trip");
    }

    #[test]
    fn paths_name_the_tenant_table_date_and_hour() {
        let acme = Tenant::parse("acme").unwrap();
        let path = file_path(
            &acme,
            Table::Logs,
            1_763_805_600_000_000_000,
            "w1a2b",
            1_763_805_612_345,
            0xab,
        );
        assert_eq!(
            path,
            "tenant=acme/logs/date=2025-11-22/hour=10/1763805612345-w1a2b-000000ab.parquet"
        );
        assert_eq!(writer_of(&path), Some("w1a2b"));
        assert_eq!(
            writer_of("tenant=acme/logs/date=2025-11-22/hour=10/000000000007-000000ab.parquet"),
            None,
            "a name from before writers"
        );
    }
}

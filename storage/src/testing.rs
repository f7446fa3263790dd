//! Batches for the storage tests, built without the OTLP conversion (which
//! lives upstream in `smolder-ingest`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{
    ArrayRef, Int64Array, StringArray, StringDictionaryBuilder, TimestampNanosecondArray,
    new_null_array,
};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::arrow::record_batch::RecordBatch;
use smolder_common::Table;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A batch of `table` with one row per entry of `times` (ns), all of
/// `service`; span ids are unique across calls. Other columns are null or
/// zero.
pub fn batch(table: Table, service: &str, times: &[i64]) -> RecordBatch {
    let schema = table.schema();
    let n = times.len();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| -> ArrayRef {
            let name = field.name().as_str();
            if name == table.time_column() || name == "end_time" {
                return Arc::new(
                    TimestampNanosecondArray::from(times.to_vec()).with_timezone("UTC"),
                );
            }
            match name {
                "service_name" => {
                    let mut b = StringDictionaryBuilder::<Int32Type>::new();
                    for _ in 0..n {
                        b.append_value(service);
                    }
                    Arc::new(b.finish())
                }
                "trace_id" | "span_id" => {
                    Arc::new(StringArray::from_iter_values((0..n).map(|_| {
                        format!("{:016x}", NEXT_ID.fetch_add(1, Ordering::Relaxed))
                    })))
                }
                "duration_ns" => Arc::new(Int64Array::from(vec![1_000; n])),
                _ => {
                    assert!(field.is_nullable() || field.data_type() == &DataType::Null);
                    new_null_array(field.data_type(), n)
                }
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).expect("valid test batch")
}

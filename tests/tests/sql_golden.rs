//! sqllogictest golden files (`tests/slt/*.slt`): the README's example
//! queries and the SQL functions, over fixed generated telemetry of which
//! the older part is in Parquet files and the newer in the memory buffer;
//! and lookups by trace id over the same kind of data, checked against a
//! full scan.
//!
//! Regenerate the expected output after an intended change with
//! `SLT_COMPLETE=1 cargo test --workspace --test sql_golden`, and review
//! the diff.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::AsArray as _;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use smolder_common::TableSource;
use smolder_common::clock::{Clock, ManualClock};
use smolder_ingest::{ExportRequest, IngestLimits, IngestMetrics, Ingestor, Transport};
use smolder_query::{QueryEngine, QueryLimits};
use smolder_sample_data::Generator;
use smolder_storage::{Store, StoreOptions};
use sqllogictest::{DBOutput, DefaultColumnType};

/// 2026-11-22T10:00:00Z: the generated data covers the two hours before.
const NOW: i64 = 1_795_341_600_000_000_000;
const MINUTE: u64 = 60_000_000_000;

struct Db {
    engine: QueryEngine,
}

#[derive(Debug)]
struct DbError(String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DbError {}

#[async_trait::async_trait]
impl sqllogictest::AsyncDB for Db {
    type Error = DbError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, DbError> {
        let output = self
            .engine
            .sql(sql)
            .await
            .map_err(|e| DbError(e.to_string()))?;
        let options = FormatOptions::default().with_null("NULL");
        let mut rows = Vec::new();
        for batch in &output.batches {
            let formatters = batch
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| DbError(e.to_string()))?;
            for row in 0..batch.num_rows() {
                rows.push(
                    formatters
                        .iter()
                        .map(|f| {
                            let text = f.value(row).to_string();
                            if text.is_empty() {
                                "(empty)".into()
                            } else {
                                text
                            }
                        })
                        .collect(),
                );
            }
        }
        Ok(DBOutput::Rows {
            types: vec![DefaultColumnType::Any; output.schema.fields().len()],
            rows,
        })
    }

    async fn shutdown(&mut self) {}
}

/// An engine over two hours of generated traffic with an incident in the
/// middle: the first hour flushed to Parquet, the second in memory.
async fn engine(dir: &std::path::Path) -> QueryEngine {
    engine_with(dir, StoreOptions::default(), QueryLimits::default()).await
}

async fn engine_with(
    dir: &std::path::Path,
    options: StoreOptions,
    limits: QueryLimits,
) -> QueryEngine {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW));
    let (store, _) = Store::open(dir, options, clock).await.unwrap();
    let store = Arc::new(store);
    let ingestor = Ingestor::new(
        Arc::clone(&store),
        IngestMetrics::new(&mut prometheus_client::registry::Registry::default()),
        IngestLimits::default(),
    );
    let mut generator = Generator::new(42, (NOW - 2 * 3_600_000_000_000) as u64);
    for minute in 0..120 {
        generator.set_incident((50..60).contains(&minute));
        if minute == 90 {
            generator.restart_service("checkout");
        }
        let telemetry = generator.requests(20, MINUTE);
        for request in [
            ExportRequest::Traces(telemetry.traces),
            ExportRequest::Logs(telemetry.logs),
            ExportRequest::Metrics(generator.metrics()),
        ] {
            let result = ingestor
                .ingest(
                    &smolder_common::Tenant::default(),
                    &request,
                    Transport::Grpc,
                )
                .await
                .unwrap();
            assert_eq!(result.rejected, 0, "{}", result.message);
        }
        if minute == 59 {
            store.flush().await.unwrap();
        }
    }
    assert!(
        !store
            .local_snapshot(
                &smolder_common::Tenant::default(),
                smolder_common::Table::Spans
            )
            .files
            .is_empty()
    );
    QueryEngine::new(vec![store as Arc<dyn TableSource>], limits).unwrap()
}

fn slt_files() -> Vec<PathBuf> {
    let dir = smolder_tests::repo_root().join("tests/slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no .slt files in {}", dir.display());
    files
}

#[tokio::test(flavor = "multi_thread")]
async fn golden_files() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path()).await;
    let complete = std::env::var_os("SLT_COMPLETE").is_some();
    for file in slt_files() {
        let engine = engine.clone();
        let mut runner = sqllogictest::Runner::new(move || {
            let engine = engine.clone();
            async move { Ok(Db { engine }) }
        });
        if complete {
            runner
                .update_test_file(
                    &file,
                    " ",
                    sqllogictest::default_validator,
                    sqllogictest::default_normalizer,
                    sqllogictest::default_column_validator,
                )
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        } else {
            runner
                .run_file_async(&file)
                .await
                .unwrap_or_else(|e| panic!("{}: {}", file.display(), e.display(false)));
        }
    }
}

/// `(trace_id, span_id)` of every row of `table`, by trace.
async fn ids_by_trace(engine: &QueryEngine, sql: &str) -> BTreeMap<String, Vec<String>> {
    let output = engine.sql(sql).await.unwrap();
    assert!(!output.truncated);
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for batch in &output.batches {
        let traces = batch.column(0).as_string::<i32>();
        let spans = batch.column(1).as_string::<i32>();
        for row in 0..batch.num_rows() {
            out.entry(traces.value(row).to_string())
                .or_default()
                .push(spans.value(row).to_string());
        }
    }
    out.values_mut().for_each(|v| v.sort());
    out
}

/// The text in `column` of the first row `sql` answers.
async fn first_text(engine: &QueryEngine, sql: &str, column: usize) -> String {
    engine.sql(sql).await.unwrap().batches[0]
        .column(column)
        .as_string::<i32>()
        .value(0)
        .to_string()
}

/// A lookup by trace id asks the bloom filters held in memory which files and
/// row groups may hold the trace, and reads only those: it must find exactly
/// the rows a full scan finds, in Parquet (many row groups per file) and in
/// memory alike.
#[tokio::test(flavor = "multi_thread")]
async fn lookups_by_trace_id_find_what_a_full_scan_finds_and_open_only_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        row_group_rows: 300,
        ..StoreOptions::default()
    };
    let limits = QueryLimits {
        max_rows: 1_000_000,
        ..QueryLimits::default()
    };
    let engine = engine_with(dir.path(), options, limits).await;
    for table in ["spans", "logs"] {
        let all = ids_by_trace(&engine, &format!("SELECT trace_id, span_id FROM {table}")).await;
        assert!(all.len() > 1000, "{} traces in {table}", all.len());
        // Traces from both hours (ids are random, so every 97th is a sample
        // across the whole time range).
        let sample: Vec<&String> = all.keys().step_by(97).collect();
        for id in &sample {
            let found = ids_by_trace(
                &engine,
                &format!("SELECT trace_id, span_id FROM {table} WHERE trace_id = '{id}'"),
            )
            .await;
            assert_eq!(found.get(*id), all.get(*id), "{table} of trace {id}");
            assert_eq!(found.len(), 1);
        }
        let three = &sample[..3];
        let found = ids_by_trace(
            &engine,
            &format!(
                "SELECT trace_id, span_id FROM {table} WHERE trace_id IN ('{}', '{}', '{}')",
                three[0], three[1], three[2]
            ),
        )
        .await;
        assert_eq!(
            found,
            three
                .iter()
                .map(|id| ((*id).clone(), all[*id].clone()))
                .collect::<BTreeMap<_, _>>()
        );
        let absent = "0123456789abcdef0123456789abcdef";
        assert!(!all.contains_key(absent));
        let found = ids_by_trace(
            &engine,
            &format!("SELECT trace_id, span_id FROM {table} WHERE trace_id = '{absent}'"),
        )
        .await;
        assert!(found.is_empty());
    }

    // A trace of the first hour: of the hour's file (the second hour is in
    // memory), only the row groups that may hold it are read. A trace of the
    // second hour opens no file at all.
    for (order, files) in [("", 1), ("DESC", 0)] {
        let sql = format!("SELECT trace_id FROM spans ORDER BY start_time {order} LIMIT 1");
        let id = first_text(&engine, &sql, 0).await;
        let sql = format!("EXPLAIN ANALYZE SELECT span_id FROM spans WHERE trace_id = '{id}'");
        let plan = first_text(&engine, &sql, 1).await;
        assert_eq!(plan.matches(".parquet").count(), files, "{plan}");
        if files == 1 {
            let groups: usize = plan
                .split_once("row_groups_pruned_statistics=")
                .and_then(|(_, rest)| rest.split_once(' '))
                .and_then(|(n, _)| n.parse().ok())
                .unwrap_or_else(|| panic!("no row group count in {plan}"));
            assert!(
                (1..=3).contains(&groups),
                "{groups} row groups read: {plan}"
            );
        }
    }
}

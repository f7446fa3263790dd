//! The SQL engine and its read-only sandbox, over empty tables.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::object_store::ObjectStore;
use smolder_common::{Scan, Table, TableSnapshot, TableSource};
use smolder_query::{Error, QueryEngine, QueryLimits};

#[derive(Debug)]
struct Empty;

#[async_trait::async_trait]
impl TableSource for Empty {
    async fn snapshot(
        &self,
        _tenant: &smolder_common::Tenant,
        _table: Table,
        _scan: &Scan,
    ) -> datafusion::error::Result<TableSnapshot> {
        Ok(TableSnapshot::default())
    }

    fn object_store(&self) -> Option<(ObjectStoreUrl, Arc<dyn ObjectStore>)> {
        None
    }
}

fn engine(limits: QueryLimits) -> QueryEngine {
    QueryEngine::new(vec![Arc::new(Empty)], limits).unwrap()
}

#[tokio::test]
async fn every_refused_statement_kind_gets_a_clear_error() {
    let engine = engine(QueryLimits::default());
    let refused = [
        ("INSERT INTO spans (name) VALUES ('x')", "INSERT"),
        ("UPDATE spans SET name = 'x'", "UPDATE"),
        ("DELETE FROM spans", "DELETE"),
        ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
        ("CREATE VIEW v AS SELECT 1", "CREATE VIEW"),
        ("DROP TABLE spans", "DROP TABLE"),
        (
            "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '/etc/'",
            "CREATE EXTERNAL TABLE",
        ),
        ("COPY (SELECT 1) TO '/tmp/out.csv'", "COPY"),
        ("SET datafusion.execution.batch_size = 1", "SET"),
        ("SELECT 1; SELECT 2", "exactly one statement"),
        ("", "no SQL statement"),
        ("EXPLAIN INSERT INTO spans (name) VALUES ('x')", "INSERT"),
    ];
    for (sql, named) in refused {
        match engine.sql(sql).await {
            Err(Error::Refused(message)) => {
                assert!(message.contains(named), "{sql:?}: {message}")
            }
            other => panic!("{sql:?} was not refused: {other:?}"),
        }
    }
}

#[tokio::test]
async fn tables_and_functions_that_read_files_or_urls_do_not_exist() {
    let engine = engine(QueryLimits::default());
    for sql in [
        "SELECT * FROM '/etc/passwd'",
        "SELECT * FROM 'https://example.com/data.parquet'",
        "SELECT * FROM read_parquet('/tmp/x.parquet')",
        "SELECT * FROM read_csv('/etc/passwd')",
    ] {
        match engine.sql(sql).await {
            Err(Error::Query(e)) => {
                let text = e.to_string();
                assert!(
                    text.contains("not found") || text.contains("not exist"),
                    "{sql}: {text}"
                );
            }
            other => panic!("{sql:?} did not fail to plan: {other:?}"),
        }
    }
}

#[tokio::test]
async fn read_only_statements_run() {
    let engine = engine(QueryLimits::default());
    for sql in [
        "SELECT count(*) FROM spans",
        "WITH t AS (SELECT 1 AS x) SELECT x FROM t",
        "EXPLAIN SELECT * FROM logs WHERE trace_id = 'ab'",
        "SHOW TABLES",
        "SHOW COLUMNS FROM metrics",
        "DESCRIBE spans",
        "SELECT attributes['http.route'] FROM spans",
    ] {
        engine
            .sql(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let out = engine.sql("SHOW TABLES").await.unwrap();
    let tables = datafusion::arrow::util::pretty::pretty_format_batches(&out.batches)
        .unwrap()
        .to_string();
    for t in ["spans", "logs", "metrics"] {
        assert!(tables.contains(t), "{tables}");
    }
}

#[tokio::test]
async fn results_are_cut_at_the_row_limit_and_say_so() {
    let engine = engine(QueryLimits {
        max_rows: 5,
        ..QueryLimits::default()
    });
    let out = engine
        .sql("SELECT * FROM generate_series(1, 100)")
        .await
        .unwrap();
    assert_eq!(
        out.batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        5
    );
    assert!(out.truncated);
    let out = engine
        .sql("SELECT * FROM generate_series(1, 5)")
        .await
        .unwrap();
    assert_eq!(
        out.batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        5
    );
    assert!(!out.truncated);
}

#[tokio::test(flavor = "multi_thread")]
async fn long_queries_are_cancelled_at_the_timeout() {
    let engine = engine(QueryLimits {
        timeout: Duration::from_millis(200),
        ..QueryLimits::default()
    });
    let started = std::time::Instant::now();
    let err = engine
        .sql("SELECT count(*) FROM generate_series(1, 100000000000) a")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Timeout(_)), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "multi_thread")]
async fn queries_beyond_the_memory_limit_fail_with_resources_exhausted() {
    let engine = engine(QueryLimits {
        memory_limit: 4 << 20,
        ..QueryLimits::default()
    });
    let err = engine
        .sql("SELECT array_agg(value) FROM generate_series(1, 5000000)")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Resources exhausted"), "{err}");
}

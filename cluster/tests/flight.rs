//! A querier over a bucket and an ingester's Arrow Flight service: every
//! acknowledged row once, through flushes, and what it says when the
//! ingester is gone.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use datafusion::object_store::ObjectStore;
use datafusion::object_store::memory::InMemory;
use smolder_cluster::flight::BufferService;
use smolder_cluster::ingesters::{ClusterSource, Ingesters};
use smolder_common::clock::{Clock, ManualClock};
use smolder_common::secret::Secret;
use smolder_common::{Table, TableSource, Tenant};
use smolder_query::{QueryEngine, QueryLimits};
use smolder_storage::testing::batch;
use smolder_storage::{Store, StoreOptions};

/// 2026-11-22T00:00:00Z.
const NOW: i64 = 1_795_305_600_000_000_000;

async fn open(bucket: &Arc<InMemory>, dir: &std::path::Path, writer: &str, writes: bool) -> Store {
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(NOW));
    Store::open_with(
        Arc::clone(bucket) as Arc<dyn ObjectStore>,
        None,
        &dir.join(writer),
        StoreOptions {
            writer: Some(writer.into()),
            writes,
            ..StoreOptions::default()
        },
        clock,
    )
    .await
    .unwrap()
    .0
}

async fn append(store: &Store, service: &str, times: &[i64]) {
    let window = store.window(Table::Spans);
    store
        .append(
            &Tenant::default(),
            Table::Spans,
            window,
            Bytes::from_static(b"export"),
            batch(Table::Spans, service, times),
        )
        .await
        .unwrap();
}

/// Serves `store`'s Flight service on a free loopback port until the
/// returned sender is dropped.
async fn serve(
    store: Arc<Store>,
    secret: Option<&str>,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = BufferService::new(store, secret.map(Secret::new)).into_server();
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tonic::transport::server::TcpIncoming::from(listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .unwrap();
    });
    (addr, stop)
}

async fn count(engine: &QueryEngine, sql: &str) -> (i64, Vec<String>) {
    let out = engine.sql(sql).await.unwrap();
    let value = out.batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    (value, out.warnings)
}

#[tokio::test]
async fn a_querier_counts_each_acknowledged_row_once_before_and_after_flushes() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = Arc::new(InMemory::new());
    let ingester = Arc::new(open(&bucket, dir.path(), "a", true).await);
    let reader = Arc::new(open(&bucket, dir.path(), "q", false).await);
    let (addr, stop) = serve(Arc::clone(&ingester), Some("s3cret")).await;
    let ingesters = Ingesters::new(
        vec![addr.to_string()],
        Some(Secret::new("s3cret")),
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    let source: Arc<dyn TableSource> =
        Arc::new(ClusterSource::new(Arc::clone(&reader), Arc::new(ingesters)));
    let engine = QueryEngine::new(vec![source], QueryLimits::default()).unwrap();

    append(&ingester, "checkout", &[NOW - 10, NOW - 9]).await;
    append(&ingester, "cart", &[NOW - 8]).await;
    assert_eq!(
        count(&engine, "SELECT count(*) FROM spans").await,
        (3, vec![])
    );
    // Filters and projection go to the ingester; the answer is the same.
    assert_eq!(
        count(
            &engine,
            "SELECT count(*) FROM spans WHERE service_name = 'checkout'"
        )
        .await
        .0,
        2
    );
    assert_eq!(
        count(
            &engine,
            "SELECT sum(duration_ns) FROM spans WHERE upper(service_name) = 'CART'"
        )
        .await
        .0,
        1_000
    );

    // The ingester flushes: the querier's manifest is now older than the
    // files holding those rows, the ingester says so, and the querier
    // reads the manifest again — no row lost, none counted twice.
    ingester.flush().await.unwrap();
    append(&ingester, "checkout", &[NOW - 7]).await;
    assert_eq!(count(&engine, "SELECT count(*) FROM spans").await.0, 4);
    assert_eq!(reader.current().files.len(), 1, "read again");
    ingester.flush().await.unwrap();
    reader.reload_manifest().await.unwrap();
    assert_eq!(count(&engine, "SELECT count(*) FROM spans").await.0, 4);

    // The ingester goes away with a row not flushed: the querier answers
    // with the files and names the missing ingester.
    append(&ingester, "checkout", &[NOW - 6]).await;
    drop(stop);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (rows, warnings) = count(&engine, "SELECT count(*) FROM spans").await;
    assert_eq!(rows, 4);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains(&addr.to_string()), "{warnings:?}");
}

#[tokio::test]
async fn an_ingester_refuses_a_querier_without_the_cluster_secret() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = Arc::new(InMemory::new());
    let ingester = Arc::new(open(&bucket, dir.path(), "a", true).await);
    let reader = Arc::new(open(&bucket, dir.path(), "q", false).await);
    append(&ingester, "checkout", &[NOW - 10]).await;
    let (addr, _stop) = serve(ingester, Some("s3cret")).await;
    for secret in [None, Some(Secret::new("guess"))] {
        let ingesters =
            Ingesters::new(vec![addr.to_string()], secret, None, Duration::from_secs(5)).unwrap();
        let source: Arc<dyn TableSource> =
            Arc::new(ClusterSource::new(Arc::clone(&reader), Arc::new(ingesters)));
        let engine = QueryEngine::new(vec![source], QueryLimits::default()).unwrap();
        let (rows, warnings) = count(&engine, "SELECT count(*) FROM spans").await;
        assert_eq!(rows, 0);
        assert!(warnings[0].contains("secret"), "{warnings:?}");
    }
}

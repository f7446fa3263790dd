//! Trace-id bloom filters, held in memory once read.
//!
//! Looking a trace up by id with no time range means asking every file
//! whether it may hold the trace. Parquet keeps the answer in a bloom filter
//! on `trace_id` per row group (written by the storage crate), but reading
//! those filters is most of such a lookup: about 130 KB per row group of
//! spans, read one by one, a hundred row groups per day of ten million spans.
//! Files never change under their names, so a file's filters are read once,
//! in one request, and kept here; the least recently used file's go first
//! once the byte budget is spent. A lookup then opens only the files and row
//! groups that may hold the id.

use std::ops::Range;
use std::sync::{Arc, Mutex};

use datafusion::datasource::physical_plan::parquet::metadata::DFParquetMetadata;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::cache::lru_queue::LruQueue;
use datafusion::logical_expr::{Expr, Operator};
use datafusion::object_store::path::Path;
use datafusion::object_store::{ObjectMeta, ObjectStore};
use datafusion::parquet::bloom_filter::Sbbf;
use smolder_common::sync::lock;

/// The column the filters are on.
pub(crate) const ID_COLUMN: &str = "trace_id";

/// The trace-id filters of one file, by row group.
#[derive(Debug)]
pub(crate) struct FileBlooms {
    /// `None` for a row group written without a filter.
    row_groups: Vec<Option<Sbbf>>,
}

impl FileBlooms {
    /// For each row group, whether it may hold one of `ids`.
    pub(crate) fn candidates(&self, ids: &[String]) -> Vec<bool> {
        self.row_groups
            .iter()
            .map(|bloom| match bloom {
                Some(bloom) => ids.iter().any(|id| bloom.check(id.as_str())),
                None => true,
            })
            .collect()
    }

    fn bytes(&self) -> usize {
        let blocks: usize = self.row_groups.iter().flatten().map(Sbbf::num_blocks).sum();
        // 32 bytes a block, and a little for the vectors.
        blocks * 32 + self.row_groups.len() * std::mem::size_of::<Option<Sbbf>>() + 64
    }
}

/// Filters of recently looked-up files, within a byte budget.
pub(crate) struct BloomCache {
    budget: usize,
    state: Mutex<State>,
}

struct State {
    files: LruQueue<Path, Arc<FileBlooms>>,
    bytes: usize,
}

impl std::fmt::Debug for BloomCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("BloomCache")
            .field("budget", &self.budget)
            .field("files", &state.files.len())
            .field("bytes", &state.bytes)
            .finish()
    }
}

impl BloomCache {
    /// A cache that keeps at most `budget` bytes of filters.
    pub(crate) fn new(budget: usize) -> Self {
        Self {
            budget,
            state: Mutex::new(State {
                files: LruQueue::new(),
                bytes: 0,
            }),
        }
    }

    /// The filters of the file `meta`, from memory or read from `store`
    /// (its footer through `metadata`, the session's metadata cache).
    pub(crate) async fn file(
        &self,
        store: &dyn ObjectStore,
        meta: &ObjectMeta,
        metadata: &Arc<FileMetadataCache>,
    ) -> Result<Arc<FileBlooms>> {
        if let Some(found) = self.lock().files.get(&meta.location) {
            return Ok(Arc::clone(found));
        }
        let blooms = Arc::new(read(store, meta, metadata).await?);
        let size = blooms.bytes();
        let mut state = self.lock();
        if size <= self.budget {
            if let Some(old) = state.files.put(meta.location.clone(), Arc::clone(&blooms)) {
                state.bytes -= old.bytes();
            }
            state.bytes += size;
            while state.bytes > self.budget {
                let Some((_, evicted)) = state.files.pop() else {
                    break;
                };
                state.bytes -= evicted.bytes();
            }
        }
        Ok(blooms)
    }

    /// Bytes of filters held.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        lock(&self.state)
    }
}

/// Reads the `trace_id` filters of every row group of a file, in one request
/// when they lie together (as the Parquet writer puts them).
async fn read(
    store: &dyn ObjectStore,
    meta: &ObjectMeta,
    metadata: &Arc<FileMetadataCache>,
) -> Result<FileBlooms> {
    let parquet = DFParquetMetadata::new(store, meta)
        .with_file_metadata_cache(Some(Arc::clone(metadata)))
        .fetch_metadata()
        .await?;
    let column = parquet
        .file_metadata()
        .schema_descr()
        .columns()
        .iter()
        .position(|c| c.path().string() == ID_COLUMN);
    let ranges: Vec<Option<Range<u64>>> = parquet
        .row_groups()
        .iter()
        .map(|rg| {
            let chunk = rg.column(column?);
            let start = u64::try_from(chunk.bloom_filter_offset()?).ok()?;
            let length = u64::try_from(chunk.bloom_filter_length()?).ok()?;
            Some(start..start + length)
        })
        .collect();
    let wanted: Vec<Range<u64>> = ranges.iter().flatten().cloned().collect();
    // object_store merges ranges that lie close together into one read.
    let mut fetched = store
        .get_ranges(&meta.location, &wanted)
        .await
        .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?
        .into_iter();
    let row_groups = ranges
        .iter()
        .map(|range| {
            range
                .as_ref()
                .map(|_| {
                    let bytes = fetched.next().expect("one answer per range");
                    Sbbf::from_bytes(&bytes).map_err(|e| {
                        DataFusionError::External(
                            format!("bloom filter of {}: {e}", meta.location).into(),
                        )
                    })
                })
                .transpose()
        })
        .collect::<Result<_>>()?;
    Ok(FileBlooms { row_groups })
}

/// The trace ids a filter restricts the rows to, if it is `trace_id = '…'`,
/// `trace_id IN (…)` or an `OR` of those.
pub(crate) fn looked_up_ids(filter: &Expr) -> Option<Vec<String>> {
    let is_id = |e: &Expr| matches!(e, Expr::Column(c) if c.name == ID_COLUMN);
    let literal = |e: &Expr| match e {
        Expr::Literal(value, _) => value.try_as_str().flatten().map(str::to_string),
        _ => None,
    };
    match filter {
        Expr::BinaryExpr(b) if b.op == Operator::Eq => {
            if is_id(&b.left) {
                literal(&b.right).map(|id| vec![id])
            } else if is_id(&b.right) {
                literal(&b.left).map(|id| vec![id])
            } else {
                None
            }
        }
        Expr::BinaryExpr(b) if b.op == Operator::Or => {
            let mut ids = looked_up_ids(&b.left)?;
            ids.extend(looked_up_ids(&b.right)?);
            Some(ids)
        }
        Expr::InList(list) if !list.negated && is_id(&list.expr) => {
            list.list.iter().map(literal).collect()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
    use datafusion::execution::cache::cache_manager::{CacheManager, CacheManagerConfig};
    use datafusion::object_store::memory::InMemory;
    use datafusion::object_store::{ObjectStoreExt as _, PutPayload};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    use datafusion::prelude::{col, lit};

    use super::*;

    /// A Parquet file of `ids` with a bloom filter on them, `per_group` rows
    /// to a row group.
    fn file(ids: &[String], per_group: usize) -> Vec<u8> {
        let array: ArrayRef = Arc::new(StringArray::from_iter_values(ids));
        let batch = RecordBatch::try_from_iter([(ID_COLUMN, array)]).unwrap();
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(per_group))
            .set_bloom_filter_enabled(true)
            .set_bloom_filter_fpp(0.01)
            .build();
        let mut out = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        out
    }

    fn ids(prefix: &str, n: usize) -> Vec<String> {
        (0..n).map(|i| format!("{prefix}{i:08x}")).collect()
    }

    async fn put(store: &InMemory, name: &str, bytes: Vec<u8>) -> ObjectMeta {
        let location = Path::from(name);
        store.put(&location, PutPayload::from(bytes)).await.unwrap();
        store.head(&location).await.unwrap()
    }

    fn metadata_cache() -> Arc<FileMetadataCache> {
        CacheManager::try_new(&CacheManagerConfig::default())
            .unwrap()
            .get_file_metadata_cache()
    }

    #[tokio::test]
    async fn row_groups_that_may_hold_an_id_are_told_apart_from_those_that_cannot() {
        let store = InMemory::new();
        let rows = ids("a", 3000);
        let meta = put(&store, "one.parquet", file(&rows, 1000)).await;
        let cache = BloomCache::new(1 << 20);
        let blooms = cache.file(&store, &meta, &metadata_cache()).await.unwrap();
        assert_eq!(blooms.candidates(&[rows[10].clone()]), [true, false, false]);
        assert_eq!(
            blooms.candidates(&[rows[2999].clone(), rows[1500].clone()]),
            [false, true, true]
        );
        // Ids that are not there: a false positive now and then, never most.
        let absent = ids("b", 1000);
        let positives: usize = absent
            .iter()
            .map(|id| {
                blooms
                    .candidates(std::slice::from_ref(id))
                    .iter()
                    .filter(|&&c| c)
                    .count()
            })
            .sum();
        assert!(positives < 3000 / 20, "{positives} false positives");
    }

    #[tokio::test]
    async fn the_files_looked_up_least_recently_make_room() {
        let store = InMemory::new();
        let metadata = metadata_cache();
        let first = put(&store, "1.parquet", file(&ids("a", 2000), 1000)).await;
        let second = put(&store, "2.parquet", file(&ids("b", 2000), 1000)).await;
        let third = put(&store, "3.parquet", file(&ids("c", 2000), 1000)).await;
        let one_file = {
            let probe = BloomCache::new(usize::MAX);
            probe.file(&store, &first, &metadata).await.unwrap();
            probe.bytes()
        };
        assert!(
            one_file > 2000,
            "a filter of 2,000 ids takes {one_file} bytes"
        );
        let cache = BloomCache::new(2 * one_file + one_file / 2);
        for meta in [&first, &second, &first, &third] {
            cache.file(&store, meta, &metadata).await.unwrap();
        }
        // The second file was used least recently: it went, the first stayed.
        assert_eq!(cache.bytes(), 2 * one_file);
        let state = cache.lock();
        assert!(state.files.contains_key(&first.location));
        assert!(!state.files.contains_key(&second.location));
        assert!(state.files.contains_key(&third.location));
    }

    #[test]
    fn lookups_by_trace_id_are_recognised() {
        let id = || col(ID_COLUMN);
        let found = |e: Expr| looked_up_ids(&e);
        assert_eq!(found(id().eq(lit("ab"))), Some(vec!["ab".to_string()]));
        assert_eq!(found(lit("ab").eq(id())), Some(vec!["ab".to_string()]));
        assert_eq!(
            found(id().in_list(vec![lit("a"), lit("b")], false)),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(
            found(id().eq(lit("a")).or(id().eq(lit("b")))),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        // Anything that could match other ids is not a lookup.
        assert_eq!(found(id().in_list(vec![lit("a")], true)), None);
        assert_eq!(
            found(id().eq(lit("a")).or(col("span_id").eq(lit("b")))),
            None
        );
        assert_eq!(found(id().not_eq(lit("a"))), None);
        assert_eq!(found(col("span_id").eq(lit("a"))), None);
        assert_eq!(found(id().like(lit("a%"))), None);
    }
}

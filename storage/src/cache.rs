//! A size-capped copy of recently read Parquet files on the local disk, for
//! processes whose files are in a bucket.
//!
//! A query over the last hours reads the same files again and again (a
//! dashboard refreshing, an SLO tick, one trace after another): from an
//! object store every read is a request with tens of milliseconds of
//! latency, from a local disk (and the page cache) it is a system call. Files
//! never change under their names — a flush or a compaction always writes a
//! new name, and the manifest, the only object replaced in place, is never
//! cached — so a copy cannot go stale and needs no validation.
//!
//! A read of a file not held here is answered from the bucket as before, and
//! starts a copy of the whole file in the background (a few at a time, so a
//! cold scan does not compete with itself); later reads of it are served from
//! the copy. Files this process writes are copied as they are written, so an
//! ingester that also queries has its newest hours local at once. When the
//! copies exceed the size cap, the least recently read go first. Copies
//! survive a restart (the folder is indexed at start, oldest first), so a
//! restarted querier is warm. Footers and page indexes are kept parsed in
//! memory by the query engine's own metadata cache; this cache holds the
//! bytes.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::execution::cache::lru_queue::LruQueue;
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use futures::stream::BoxStream;
use futures::{StreamExt as _, TryStreamExt as _};
use smolder_common::sync::lock;
use tokio::io::AsyncWriteExt as _;

/// Files being copied at once.
const FILLS_AT_ONCE: usize = 4;
/// Partial copies end with this (removed at start).
const PARTIAL: &str = ".partial";

/// Where the copies live and how many bytes they may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadCacheOptions {
    /// The folder of the copies (created if missing).
    pub dir: PathBuf,
    /// Bytes of copies kept at most.
    pub capacity: u64,
}

/// Counters of the cache, for `/metrics`.
#[derive(Debug, Default)]
pub struct ReadCacheStats {
    /// Reads served from a copy.
    pub hits: AtomicU64,
    /// Reads of cacheable files served from the bucket.
    pub misses: AtomicU64,
    /// Files copied (read or written).
    pub fills: AtomicU64,
    /// Copies removed to stay within the capacity.
    pub evictions: AtomicU64,
}

/// The copies held: path to size, least recently read first.
struct Held {
    files: LruQueue<ObjectPath, u64>,
    bytes: u64,
}

/// An object store that keeps local copies of the Parquet files read from
/// (or written to) another; see the module documentation.
pub struct ReadCache {
    inner: Arc<dyn ObjectStore>,
    dir: PathBuf,
    local: LocalFileSystem,
    capacity: u64,
    held: Mutex<Held>,
    /// Files being copied now.
    filling: Mutex<std::collections::HashSet<ObjectPath>>,
    fills: Arc<tokio::sync::Semaphore>,
    stats: ReadCacheStats,
}

impl fmt::Debug for ReadCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadCache")
            .field("dir", &self.dir)
            .field("capacity", &self.capacity)
            .field("bytes", &self.bytes())
            .finish_non_exhaustive()
    }
}

impl fmt::Display for ReadCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ReadCache({}, {})", self.inner, self.dir.display())
    }
}

/// Whether copies of `path` can be kept: Parquet files, which never change.
fn cacheable(path: &ObjectPath) -> bool {
    path.extension() == Some("parquet")
}

impl ReadCache {
    /// A cache in `options.dir` in front of `inner`; the copies already
    /// there (from before a restart) are kept, oldest dropped first.
    pub fn new(inner: Arc<dyn ObjectStore>, options: &ReadCacheOptions) -> std::io::Result<Self> {
        std::fs::create_dir_all(&options.dir)?;
        let local = LocalFileSystem::new_with_prefix(&options.dir)
            .map_err(std::io::Error::other)?
            .with_automatic_cleanup(true);
        let cache = Self {
            inner,
            dir: options.dir.clone(),
            local,
            capacity: options.capacity,
            held: Mutex::new(Held {
                files: LruQueue::new(),
                bytes: 0,
            }),
            filling: Mutex::new(Default::default()),
            fills: Arc::new(tokio::sync::Semaphore::new(FILLS_AT_ONCE)),
            stats: ReadCacheStats::default(),
        };
        let mut found = Vec::new();
        walk(&options.dir, &options.dir, &mut found)?;
        found.sort_by_key(|(_, _, modified)| *modified);
        for (path, size, _) in found {
            cache.admit(path, size);
        }
        Ok(cache)
    }

    /// The store behind the cache.
    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// Bytes of copies held.
    pub fn bytes(&self) -> u64 {
        lock(&self.held).bytes
    }

    /// Copies held.
    pub fn files(&self) -> usize {
        lock(&self.held).files.len()
    }

    /// The cache's counters.
    pub fn stats(&self) -> &ReadCacheStats {
        &self.stats
    }

    /// The capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    fn local_path(&self, path: &ObjectPath) -> PathBuf {
        self.dir.join(path.as_ref())
    }

    /// Whether a copy of `path` is held (and marks it recently read).
    fn holds(&self, path: &ObjectPath) -> bool {
        lock(&self.held).files.get(path).is_some()
    }

    /// Records a copy of `size` bytes at `path` and removes the least
    /// recently read ones beyond the capacity.
    fn admit(&self, path: ObjectPath, size: u64) {
        let mut evicted = Vec::new();
        {
            let mut held = lock(&self.held);
            if let Some(old) = held.files.put(path, size) {
                held.bytes -= old;
            }
            held.bytes += size;
            while held.bytes > self.capacity {
                let Some((path, size)) = held.files.pop() else {
                    break;
                };
                held.bytes -= size;
                evicted.push(path);
            }
        }
        for path in evicted {
            self.stats.evictions.fetch_add(1, Ordering::Relaxed);
            remove_file(&self.local_path(&path));
        }
    }

    /// Drops the copy of `path`, if any.
    fn forget(&self, path: &ObjectPath) {
        let removed = {
            let mut held = lock(&self.held);
            let removed = held.files.remove(path);
            if let Some(size) = removed {
                held.bytes -= size;
            }
            removed
        };
        if removed.is_some() {
            remove_file(&self.local_path(path));
        }
    }

    /// Runs `work` on `path` in the background unless a copy of it is
    /// being made already.
    fn in_background<F, Fut>(self: &Arc<Self>, path: &ObjectPath, work: F)
    where
        F: FnOnce(Arc<Self>, ObjectPath) -> Fut + Send + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        if !lock(&self.filling).insert(path.clone()) {
            return;
        }
        let cache = Arc::clone(self);
        let path = path.clone();
        tokio::spawn(async move {
            if let Err(e) = work(Arc::clone(&cache), path.clone()).await {
                tracing::debug!(%path, error = %e, "Copying a file into the read cache failed.");
            }
            lock(&cache.filling).remove(&path);
        });
    }

    /// Starts copying `path` in the background unless it is held, being
    /// copied, or too large to be worth holding.
    fn fill_later(self: &Arc<Self>, path: &ObjectPath, size: Option<u64>) {
        if size.is_some_and(|size| size > self.capacity / 2) {
            return;
        }
        self.in_background(path, |cache, path| async move {
            let _permit = cache.fills.acquire().await;
            if cache.holds(&path) {
                return Ok(());
            }
            let got = cache.inner.get_opts(&path, GetOptions::default()).await?;
            let size = got.meta.size;
            if size > cache.capacity / 2 {
                return Ok(());
            }
            let chunks = got.into_stream().map_err(std::io::Error::other);
            cache.copy_in(&path, chunks, size).await
        });
    }

    /// Keeps a copy of what this process has just written to `path`.
    fn keep_written(self: &Arc<Self>, path: &ObjectPath, payload: PutPayload) {
        let size = payload.content_length() as u64;
        if size > self.capacity / 2 {
            return;
        }
        let chunks: Vec<Bytes> = payload.iter().cloned().collect();
        self.in_background(path, move |cache, path| async move {
            let chunks = futures::stream::iter(chunks.into_iter().map(Ok));
            cache.copy_in(&path, chunks, size).await
        });
    }

    /// Writes `chunks` (the whole file, `size` bytes) as the copy of `path`:
    /// to a partial file first, renamed once complete, so a crash or a
    /// short read never leaves a torn copy under the file's name.
    async fn copy_in(
        &self,
        path: &ObjectPath,
        mut chunks: impl futures::Stream<Item = std::io::Result<Bytes>> + Unpin,
        size: u64,
    ) -> Result<()> {
        let target = self.local_path(path);
        let partial = partial_path(&target);
        let written = async {
            if let Some(parent) = target.parent() {
                tokio::fs::create_dir_all(parent).await?;
            }
            let mut file = tokio::fs::File::create(&partial).await?;
            let mut written = 0u64;
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk?;
                written += chunk.len() as u64;
                file.write_all(&chunk).await?;
            }
            file.flush().await?;
            drop(file);
            if written != size {
                return Err(std::io::Error::other(format!(
                    "{written} bytes of {size} arrived"
                )));
            }
            tokio::fs::rename(&partial, &target).await
        }
        .await;
        match written {
            Ok(()) => {
                self.stats.fills.fetch_add(1, Ordering::Relaxed);
                self.admit(path.clone(), size);
                Ok(())
            }
            Err(e) => {
                remove_file(&partial);
                Err(local_error(&target, e))
            }
        }
    }
}

fn partial_path(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(PARTIAL);
    PathBuf::from(name)
}

fn local_error(path: &Path, source: std::io::Error) -> datafusion::object_store::Error {
    datafusion::object_store::Error::Generic {
        store: "ReadCache",
        source: format!("{}: {source}", path.display()).into(),
    }
}

fn remove_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::debug!(path = %path.display(), error = %e, "Removing a copy from the read cache failed.");
    }
}

/// The copies under `dir` (path, size, modified); partial ones are removed.
fn walk(
    root: &Path,
    dir: &Path,
    out: &mut Vec<(ObjectPath, u64, std::time::SystemTime)>,
) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let meta = entry.metadata()?;
        if meta.is_dir() {
            walk(root, &path, out)?;
        } else if path.to_string_lossy().ends_with(PARTIAL) {
            remove_file(&path);
        } else if let Ok(relative) = path.strip_prefix(root)
            && let Ok(object) = ObjectPath::parse(relative.to_string_lossy())
            && cacheable(&object)
        {
            let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
            out.push((object, meta.len(), modified));
        }
    }
    Ok(())
}

/// Whether `options` ask for something only the bucket can answer (a
/// condition or a version).
fn conditional(options: &GetOptions) -> bool {
    options.if_match.is_some()
        || options.if_none_match.is_some()
        || options.if_modified_since.is_some()
        || options.if_unmodified_since.is_some()
        || options.version.is_some()
}

/// The cache as an object store. The methods are on `Arc<ReadCache>`'s
/// wrapper so that a miss can start a background copy that outlives it.
#[derive(Debug, Clone)]
pub(crate) struct CachedStore(pub(crate) Arc<ReadCache>);

impl fmt::Display for CachedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl CachedStore {
    /// Reads from the copy of `path` if one is held; `None` when not (or
    /// when the copy went between the check and the read).
    async fn read_copy<T>(
        &self,
        path: &ObjectPath,
        read: impl AsyncFnOnce(&LocalFileSystem) -> Result<T>,
    ) -> Option<T> {
        let cache = &self.0;
        if !cacheable(path) || !cache.holds(path) {
            return None;
        }
        match read(&cache.local).await {
            Ok(found) => {
                cache.stats.hits.fetch_add(1, Ordering::Relaxed);
                Some(found)
            }
            Err(e) => {
                tracing::debug!(%path, error = %e, "A copy in the read cache could not be read; reading the bucket.");
                cache.forget(path);
                None
            }
        }
    }

    fn missed(&self, path: &ObjectPath, size: Option<u64>) {
        if cacheable(path) {
            self.0.stats.misses.fetch_add(1, Ordering::Relaxed);
            self.0.fill_later(path, size);
        }
    }
}

#[async_trait]
impl ObjectStore for CachedStore {
    async fn put_opts(
        &self,
        location: &ObjectPath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let keep = cacheable(location).then(|| payload.clone());
        self.0.forget(location);
        let result = self.0.inner.put_opts(location, payload, opts).await?;
        if let Some(payload) = keep {
            self.0.keep_written(location, payload);
        }
        Ok(result)
    }

    async fn put_multipart_opts(
        &self,
        location: &ObjectPath,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.0.forget(location);
        self.0.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &ObjectPath, options: GetOptions) -> Result<GetResult> {
        if conditional(&options) {
            return self.0.inner.get_opts(location, options).await;
        }
        let local = options.clone();
        if let Some(found) = self
            .read_copy(location, async move |fs| fs.get_opts(location, local).await)
            .await
        {
            return Ok(found);
        }
        let got = self.0.inner.get_opts(location, options).await?;
        self.missed(location, Some(got.meta.size));
        Ok(got)
    }

    async fn get_ranges(&self, location: &ObjectPath, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        if let Some(found) = self
            .read_copy(location, async |fs| fs.get_ranges(location, ranges).await)
            .await
        {
            return Ok(found);
        }
        let got = self.0.inner.get_ranges(location, ranges).await?;
        self.missed(location, None);
        Ok(got)
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<ObjectPath>>,
    ) -> BoxStream<'static, Result<ObjectPath>> {
        let cache = Arc::clone(&self.0);
        self.0
            .inner
            .delete_stream(locations)
            .inspect(move |deleted| {
                if let Ok(path) = deleted {
                    cache.forget(path);
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&ObjectPath>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.0.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&ObjectPath>,
        offset: &ObjectPath,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.0.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&ObjectPath>) -> Result<ListResult> {
        self.0.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &ObjectPath,
        to: &ObjectPath,
        options: CopyOptions,
    ) -> Result<()> {
        self.0.forget(to);
        self.0.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use datafusion::object_store::memory::InMemory;
    use datafusion::object_store::{ObjectStoreExt as _, PutPayload};

    use super::*;

    /// An object store that counts the reads that reach it.
    #[derive(Debug)]
    struct Counting {
        inner: InMemory,
        reads: AtomicU64,
    }

    impl fmt::Display for Counting {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Counting")
        }
    }

    #[async_trait]
    impl ObjectStore for Counting {
        async fn put_opts(
            &self,
            location: &ObjectPath,
            payload: PutPayload,
            opts: PutOptions,
        ) -> Result<PutResult> {
            self.inner.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &ObjectPath,
            opts: PutMultipartOptions,
        ) -> Result<Box<dyn MultipartUpload>> {
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(&self, location: &ObjectPath, options: GetOptions) -> Result<GetResult> {
            self.reads.fetch_add(1, Ordering::Relaxed);
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, Result<ObjectPath>>,
        ) -> BoxStream<'static, Result<ObjectPath>> {
            self.inner.delete_stream(locations)
        }
        fn list(&self, prefix: Option<&ObjectPath>) -> BoxStream<'static, Result<ObjectMeta>> {
            self.inner.list(prefix)
        }
        async fn list_with_delimiter(&self, prefix: Option<&ObjectPath>) -> Result<ListResult> {
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &ObjectPath,
            to: &ObjectPath,
            options: CopyOptions,
        ) -> Result<()> {
            self.inner.copy_opts(from, to, options).await
        }
    }

    fn bucket() -> Arc<Counting> {
        Arc::new(Counting {
            inner: InMemory::new(),
            reads: AtomicU64::new(0),
        })
    }

    fn cached(bucket: &Arc<Counting>, dir: &Path, capacity: u64) -> CachedStore {
        let options = ReadCacheOptions {
            dir: dir.to_path_buf(),
            capacity,
        };
        let inner = Arc::clone(bucket) as Arc<dyn ObjectStore>;
        CachedStore(Arc::new(ReadCache::new(inner, &options).unwrap()))
    }

    async fn put_raw(bucket: &Counting, path: &str, bytes: &[u8]) {
        bucket
            .inner
            .put(&ObjectPath::from(path), PutPayload::from(bytes.to_vec()))
            .await
            .unwrap();
    }

    /// Waits for the background copies to finish.
    async fn settled(store: &CachedStore) {
        for _ in 0..1000 {
            if lock(&store.0.filling).is_empty() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        panic!("the read cache never finished copying");
    }

    async fn range(store: &CachedStore, path: &str, range: Range<u64>) -> Bytes {
        store
            .get_range(&ObjectPath::from(path), range)
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_file_read_once_is_then_read_from_the_local_copy() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = bucket();
        put_raw(&bucket, "t/a.parquet", b"0123456789").await;
        let store = cached(&bucket, dir.path(), 1 << 20);

        assert_eq!(range(&store, "t/a.parquet", 2..5).await, "234");
        settled(&store).await;
        let reads = bucket.reads.load(Ordering::Relaxed);
        assert_eq!(reads, 2, "the read and the background copy");

        assert_eq!(range(&store, "t/a.parquet", 5..10).await, "56789");
        let ranges = store
            .get_ranges(&ObjectPath::from("t/a.parquet"), &[0..1, 9..10])
            .await
            .unwrap();
        assert_eq!(ranges, vec![Bytes::from("0"), Bytes::from("9")]);
        assert_eq!(bucket.reads.load(Ordering::Relaxed), reads);
        assert_eq!(store.0.stats().hits.load(Ordering::Relaxed), 2);
        assert_eq!(store.0.bytes(), 10);
        assert!(dir.path().join("t/a.parquet").exists());
    }

    #[tokio::test]
    async fn the_manifest_and_other_objects_are_always_read_from_the_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = bucket();
        let store = cached(&bucket, dir.path(), 1 << 20);
        let manifest = ObjectPath::from("manifest.json");
        for version in ["1", "2"] {
            store
                .put(&manifest, PutPayload::from(version.as_bytes().to_vec()))
                .await
                .unwrap();
            settled(&store).await;
            let got = store.get(&manifest).await.unwrap().bytes().await.unwrap();
            assert_eq!(got, version);
        }
        assert_eq!(store.0.files(), 0);
        assert_eq!(bucket.reads.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn a_written_file_is_kept_and_a_deleted_one_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = bucket();
        let store = cached(&bucket, dir.path(), 1 << 20);
        let path = ObjectPath::from("t/new.parquet");
        store
            .put(&path, PutPayload::from(b"written".to_vec()))
            .await
            .unwrap();
        settled(&store).await;
        assert_eq!(range(&store, "t/new.parquet", 0..7).await, "written");
        assert_eq!(bucket.reads.load(Ordering::Relaxed), 0);

        store.delete(&path).await.unwrap();
        assert_eq!(store.0.files(), 0);
        assert!(!dir.path().join("t/new.parquet").exists());
        assert!(
            store.get_range(&path, 0..1).await.is_err(),
            "a deleted file is not served from a stale copy"
        );
    }

    #[tokio::test]
    async fn beyond_its_capacity_the_least_recently_read_copies_go_first() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = bucket();
        for name in ["a", "b", "c"] {
            put_raw(&bucket, &format!("{name}.parquet"), &[0; 40]).await;
        }
        let store = cached(&bucket, dir.path(), 100);
        for name in ["a", "b"] {
            range(&store, &format!("{name}.parquet"), 0..1).await;
            settled(&store).await;
        }
        // a is read again, so b is now the least recently read.
        range(&store, "a.parquet", 0..1).await;
        range(&store, "c.parquet", 0..1).await;
        settled(&store).await;

        assert_eq!(store.0.bytes(), 80);
        assert!(store.0.holds(&ObjectPath::from("a.parquet")));
        assert!(!store.0.holds(&ObjectPath::from("b.parquet")));
        assert!(!dir.path().join("b.parquet").exists());
        assert_eq!(store.0.stats().evictions.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn files_larger_than_half_the_capacity_are_not_copied() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = bucket();
        put_raw(&bucket, "big.parquet", &[0; 60]).await;
        let store = cached(&bucket, dir.path(), 100);
        range(&store, "big.parquet", 0..1).await;
        settled(&store).await;
        assert_eq!(store.0.files(), 0);
    }

    #[tokio::test]
    async fn a_copy_that_arrives_short_is_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = cached(&bucket(), dir.path(), 1 << 20);
        let chunks = futures::stream::iter(vec![Ok(Bytes::from("abc"))]);
        let path = ObjectPath::from("t/x.parquet");
        assert!(store.0.copy_in(&path, chunks, 10).await.is_err());
        assert_eq!(store.0.files(), 0);
        assert!(!dir.path().join("t/x.parquet").exists());
        assert!(!dir.path().join("t/x.parquet.partial").exists());
    }

    #[tokio::test]
    async fn copies_survive_a_restart_and_partial_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let bucket = bucket();
        put_raw(&bucket, "t/a.parquet", b"kept").await;
        {
            let store = cached(&bucket, dir.path(), 1 << 20);
            range(&store, "t/a.parquet", 0..1).await;
            settled(&store).await;
        }
        std::fs::write(dir.path().join("t/b.parquet.partial"), b"torn").unwrap();
        let reads = bucket.reads.load(Ordering::Relaxed);

        let store = cached(&bucket, dir.path(), 1 << 20);
        assert_eq!(range(&store, "t/a.parquet", 0..4).await, "kept");
        assert_eq!(bucket.reads.load(Ordering::Relaxed), reads);
        assert!(!dir.path().join("t/b.parquet.partial").exists());
    }
}

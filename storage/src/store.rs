//! [`Store`]: the write-ahead log, the memory buffer and the Parquet files of
//! every table, kept consistent with each other.
//!
//! Three locks, each with one job:
//! * `gate` (async): appends hold it shared from their buffer reservation to
//!   their commit; a flush takes it exclusively for an instant to rotate the
//!   log, so that every record before the new segment is in the buffer.
//! * `view`: queries hold it shared while they copy the buffer's batches and
//!   the manifest's files; a commit holds it exclusively while it installs new
//!   files and drops the batches they replace, so a query sees each row once.
//! * `maintenance` (async): flush, compaction and retention run one at a time,
//!   each a read-modify-write of the manifest.
//!
//! Tenants are kept apart at every step: a buffered batch, a log record and
//! a Parquet file each belong to one tenant (files under `tenant=<name>/`),
//! a flush or compaction never puts two tenants' rows in one file, and a
//! query's [`TableSource::snapshot`] holds its tenant's batches and files
//! only.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use datafusion::arrow::compute::{SortOptions, concat_batches};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::object_store::buffered::BufWriter;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{
    ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use datafusion::parquet::arrow::AsyncArrowWriter;
use datafusion::parquet::errors::ParquetError;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;
use datafusion::prelude::SessionContext;
use futures::{StreamExt as _, TryStreamExt as _};
use smolder_common::{Scan, Table, TableSnapshot, TableSource, Tenant};

use crate::StorageUrl;
use crate::buffer::{Buffer, BufferFull, Buffered};
use crate::cache::{CachedStore, ReadCache, ReadCacheOptions};
use crate::catalog::{FileMeta, MANIFEST_PATH, Manifest};
use crate::parquet::{
    encode, file_path, sort_and_split, sort_key, time_range, writer_of, writer_properties,
};
use crate::wal::{Record, Wal, WalError, WalOptions};
use crate::{HOUR_NS, TimeWindow};
use smolder_common::clock::Clock;
use smolder_common::sync::{lock, read, write};

/// How often the sweep lists the whole bucket ([`Store::sweep`]).
const SWEEP_EVERY: Duration = Duration::from_secs(600);
/// Files written more recently than this are never swept: a writer may be
/// about to list them (a flush takes seconds).
const SWEEP_MIN_AGE: Duration = Duration::from_secs(6 * 3600);

/// Which background work a process does ([`Store::maintain`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    /// Flush the buffer (an ingester).
    pub flush: bool,
    /// Retention, compaction and the sweep (the compactor holding the lease).
    pub compact: bool,
}

impl Work {
    /// Everything, as one process alone does.
    pub const ALL: Self = Self {
        flush: true,
        compact: true,
    };
}

/// When small files of an hour are merged.
#[derive(Debug, Clone, Copy)]
pub struct CompactionOptions {
    /// Files of at least this many bytes are left alone; merging stops when
    /// the output would exceed it.
    pub target_file_bytes: u64,
    /// An hour still receiving data is compacted once it has this many small
    /// files.
    pub min_files: usize,
    /// An hour is considered complete this long after it ends; from then on
    /// any two small files of it are merged.
    pub settle: Duration,
}

impl Default for CompactionOptions {
    fn default() -> Self {
        Self {
            target_file_bytes: 256 << 20,
            min_files: 8,
            settle: Duration::from_secs(600),
        }
    }
}

/// Options of the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Bytes of Arrow data the memory buffer holds at most.
    pub buffer_limit: usize,
    /// Bytes of the buffer one tenant may hold at most (`None`: all of it).
    pub tenant_buffer_limit: Option<usize>,
    /// The write-ahead log; `None` keeps unflushed data in memory only.
    pub wal: Option<WalOptions>,
    /// The buffer is flushed to Parquet at least this often (and sooner when
    /// it is half full).
    pub flush_interval: Duration,
    /// How long each table keeps data, indexed by [`Table`] order.
    pub retention: [Duration; 3],
    /// Items more than this far in the future are rejected.
    pub max_future: Duration,
    /// Compaction of small files.
    pub compaction: CompactionOptions,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Files dropped by compaction or retention are deleted after this delay,
    /// so queries that already planned to read them can finish.
    pub deletion_delay: Duration,
    /// Arrow bytes sorted and encoded at once during a flush (working memory
    /// beside the buffer).
    pub flush_chunk_bytes: usize,
    /// This writer's id (see `catalog`): `None` reads it from (or makes it
    /// in) `<data dir>/writer-id` with [`Store::open`], and is `local` with
    /// [`Store::open_with`].
    pub writer: Option<String>,
    /// Whether this process writes files (it ingests or compacts). A
    /// reader opens no log, deletes no file and never replaces the
    /// manifest: it only reads what the writers list.
    pub writes: bool,
    /// Local copies of files read from a bucket (see `cache`); ignored for
    /// a local directory.
    pub read_cache: Option<ReadCacheOptions>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        let day = Duration::from_secs(86_400);
        Self {
            buffer_limit: 1 << 30,
            tenant_buffer_limit: None,
            wal: Some(WalOptions::default()),
            flush_interval: Duration::from_secs(60),
            retention: [7 * day, 7 * day, 30 * day],
            max_future: Duration::from_secs(3600),
            compaction: CompactionOptions::default(),
            row_group_rows: 128 * 1024,
            deletion_delay: Duration::from_secs(120),
            flush_chunk_bytes: 64 << 20,
            writer: None,
            writes: true,
            read_cache: None,
        }
    }
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The buffer is full (backpressure).
    #[error(transparent)]
    BufferFull(#[from] BufferFull),
    /// The write-ahead log failed.
    #[error(transparent)]
    Wal(#[from] WalError),
    /// Reading or writing the object store failed.
    #[error("object store: {0}")]
    ObjectStore(#[from] datafusion::object_store::Error),
    /// Encoding Parquet failed.
    #[error("Parquet: {0}")]
    Parquet(#[from] ParquetError),
    /// Arrow refused an operation (a bug).
    #[error("Arrow: {0}")]
    Arrow(#[from] ArrowError),
    /// Reading files back for compaction failed.
    #[error("DataFusion: {0}")]
    DataFusion(Box<DataFusionError>),
    /// The manifest cannot be read.
    #[error("manifest {MANIFEST_PATH}: {0}")]
    Manifest(String),
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl From<DataFusionError> for StoreError {
    fn from(e: DataFusionError) -> Self {
        Self::DataFusion(Box::new(e))
    }
}

/// Counters of the store's background work, for `/metrics`.
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Flushes that wrote files.
    pub flushes: AtomicU64,
    /// Flushes, compactions or retention passes that failed.
    pub failures: AtomicU64,
    /// Parquet files written by flushes and compactions.
    pub files_written: AtomicU64,
    /// Bytes of those files.
    pub bytes_written: AtomicU64,
    /// Files merged away by compaction.
    pub files_compacted: AtomicU64,
    /// Files deleted by retention.
    pub files_expired: AtomicU64,
    /// Wall time of the last successful flush, ns since the epoch.
    pub last_flush_ns: AtomicU64,
}

/// What one maintenance pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MaintenanceReport {
    /// Rows written to new files by a flush.
    pub rows_flushed: u64,
    /// New files.
    pub files_written: usize,
    /// Files merged by compaction.
    pub files_compacted: usize,
    /// Files dropped by retention.
    pub files_expired: usize,
}

/// The stored data of every table; see the module documentation.
pub struct Store {
    options: StoreOptions,
    clock: Arc<dyn Clock>,
    buffer: Buffer,
    wal: Option<Wal>,
    object_store: Arc<dyn ObjectStore>,
    /// The local copies in front of `object_store`, if any.
    read_cache: Option<Arc<ReadCache>>,
    url: ObjectStoreUrl,
    local_root: Option<PathBuf>,
    manifest: RwLock<Arc<Manifest>>,
    /// The version of the manifest in the object store that `manifest` is
    /// (`None` on a local disk, where this process is the only writer).
    manifest_version: Mutex<Option<UpdateVersion>>,
    /// This process's writer id.
    writer: String,
    view: RwLock<()>,
    gate: tokio::sync::RwLock<()>,
    maintenance: tokio::sync::Mutex<()>,
    garbage: Mutex<Vec<(Instant, String)>>,
    /// Files the sweep found unlisted, and since when.
    unlisted: Mutex<std::collections::HashMap<String, Instant>>,
    last_sweep: Mutex<Option<Instant>>,
    next_seq: AtomicU64,
    last_flush: Mutex<Instant>,
    session: SessionContext,
    stats: StoreStats,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("url", &self.url)
            .field("buffer", &self.buffer)
            .finish_non_exhaustive()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// Opens the store in `data_dir`: Parquet files and the manifest under
    /// `parquet/`, the log under `wal/`. Deletes files a crashed flush or
    /// compaction left behind, and returns the log records not yet persisted,
    /// which the caller converts and hands to [`Store::replay`].
    pub async fn open(
        data_dir: &Path,
        options: StoreOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, Vec<Record>), StoreError> {
        let files = StorageUrl::Local(data_dir.join("parquet"));
        Self::open_at(&files, data_dir, options, clock).await
    }

    /// Opens the store with its files and manifest at `files` (a local
    /// directory or a bucket) and its log under `<data_dir>/wal`; the writer
    /// id is kept in `<data_dir>/writer-id` unless `options` name one.
    pub async fn open_at(
        files: &StorageUrl,
        data_dir: &Path,
        mut options: StoreOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, Vec<Record>), StoreError> {
        std::fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
        if options.writer.is_none() {
            options.writer = Some(writer_id(data_dir)?);
        }
        let (object_store, local_root) = files.open()?;
        Self::open_with(
            object_store,
            local_root,
            &data_dir.join("wal"),
            options,
            clock,
        )
        .await
    }

    /// Opens the store on any object store; `local_root` is the directory
    /// behind a local one, whose files are then also `fsync`ed (and whose
    /// manifest is replaced without a condition: one process writes it).
    /// Any other store must support conditional puts.
    pub async fn open_with(
        object_store: Arc<dyn ObjectStore>,
        local_root: Option<PathBuf>,
        wal_dir: &Path,
        options: StoreOptions,
        clock: Arc<dyn Clock>,
    ) -> Result<(Self, Vec<Record>), StoreError> {
        let writer = options.writer.clone().unwrap_or_else(|| "local".into());
        check_writer_id(&writer)?;
        let (manifest, version) = read_manifest(object_store.as_ref()).await?;
        let url = ObjectStoreUrl::parse("smolder://storage").expect("valid URL");
        // Compaction reads the bucket directly: the files it merges are
        // about to go, and copying them would push out the ones queries read.
        let session = SessionContext::new();
        session.register_object_store(url.as_ref(), Arc::clone(&object_store));
        let read_cache = match &options.read_cache {
            Some(cache) if local_root.is_none() && cache.capacity > 0 => Some(Arc::new(
                ReadCache::new(Arc::clone(&object_store), cache).map_err(io_err(&cache.dir))?,
            )),
            _ => None,
        };
        let object_store = match &read_cache {
            Some(cache) => Arc::new(CachedStore(Arc::clone(cache))) as Arc<dyn ObjectStore>,
            None => object_store,
        };
        let wal_options = options.wal.filter(|_| options.writes);
        let writes = options.writes;
        let mut store = Self {
            buffer: Buffer::with_tenant_limit(
                options.buffer_limit,
                options.tenant_buffer_limit.unwrap_or(options.buffer_limit),
            ),
            next_seq: AtomicU64::new(1),
            manifest: RwLock::new(Arc::new(manifest)),
            manifest_version: Mutex::new(version),
            writer,
            options,
            clock,
            wal: None,
            object_store,
            read_cache,
            url,
            local_root,
            view: RwLock::new(()),
            gate: tokio::sync::RwLock::new(()),
            maintenance: tokio::sync::Mutex::new(()),
            garbage: Mutex::new(Vec::new()),
            unlisted: Mutex::new(std::collections::HashMap::new()),
            last_sweep: Mutex::new(None),
            last_flush: Mutex::new(Instant::now()),
            session,
            stats: StoreStats::default(),
        };
        // A manifest from before writers: its log position is this
        // writer's (the first to open it after the upgrade).
        if wal_options.is_some() && store.current().persisted_through > 0 {
            let writer = store.writer.clone();
            store
                .update_manifest(
                    |m| {
                        if m.writers.is_empty() && m.persisted_through > 0 {
                            m.writers.insert(writer.clone(), m.persisted_through);
                            m.persisted_through = 0;
                        }
                        Ok(())
                    },
                    || {},
                )
                .await?;
        }
        let persisted = store.current().persisted(&store.writer);
        store.next_seq = AtomicU64::new(persisted + 1);
        let records = match wal_options {
            Some(wal_options) => {
                let (wal, records) = Wal::open(wal_dir, wal_options, persisted)?;
                store.wal = Some(wal);
                records
            }
            None => Vec::new(),
        };
        if writes {
            store.delete_orphans().await?;
        }
        Ok((store, records))
    }

    /// The lease `name` among the processes that share this store, sought
    /// under this writer's id (always held on a local directory).
    pub fn lease(&self, name: &str, ttl: Duration) -> crate::Lease {
        crate::Lease::new(self.bucket(), name, &self.writer, ttl)
    }

    /// The bucket the files are in; `None` for a local directory.
    pub fn bucket(&self) -> Option<Arc<dyn ObjectStore>> {
        self.local_root
            .is_none()
            .then(|| Arc::clone(&self.object_store))
    }

    /// This process's writer id.
    pub fn writer(&self) -> &str {
        &self.writer
    }

    /// The last record of this writer's log that the files hold.
    pub fn persisted_through(&self) -> u64 {
        self.current().persisted(&self.writer)
    }

    /// Replaces the manifest by `change` applied to it, durably, then for
    /// queries (with `installed` run under the view lock, as the manifest is
    /// swapped in). On an object store the put is conditional on the version
    /// read: when another writer replaced the manifest meanwhile, it is read
    /// again and `change` applied again (it must compute its edit from the
    /// manifest it is given, and be idempotent: a put whose answer was lost
    /// and that the client retried fails its precondition although it was
    /// applied), so concurrent writers lose no update.
    async fn update_manifest<T>(
        &self,
        mut change: impl FnMut(&mut Manifest) -> Result<T, StoreError>,
        installed: impl FnOnce(),
    ) -> Result<T, StoreError> {
        const ATTEMPTS: u32 = 50;
        for attempt in 1..=ATTEMPTS {
            let mut manifest = Manifest::clone(&self.current());
            let out = change(&mut manifest)?;
            let version = lock(&self.manifest_version).clone();
            match self.put_manifest(&manifest, version).await {
                Ok(version) => {
                    *lock(&self.manifest_version) = version;
                    let _view = write(&self.view);
                    *write(&self.manifest) = Arc::new(manifest);
                    installed();
                    return Ok(out);
                }
                Err(StoreError::ObjectStore(
                    datafusion::object_store::Error::Precondition { .. }
                    | datafusion::object_store::Error::AlreadyExists { .. },
                )) if attempt < ATTEMPTS => {
                    tracing::debug!(
                        attempt,
                        "The manifest changed meanwhile; applying the change to the new one."
                    );
                    self.reload_manifest().await?;
                    // Writers that collided try again at different times.
                    let pause = rand::random::<u64>() % (10 * u64::from(attempt));
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                }
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Manifest(format!(
            "{ATTEMPTS} conditional puts in a row found the manifest changed"
        )))
    }

    /// Puts `manifest`: on a local disk durably and unconditionally; on an
    /// object store only over `version` (or, without one, only if there is
    /// none yet). Answers the new version.
    async fn put_manifest(
        &self,
        manifest: &Manifest,
        version: Option<UpdateVersion>,
    ) -> Result<Option<UpdateVersion>, StoreError> {
        let json = manifest.to_json();
        if self.local_root.is_some() {
            self.put_durable(MANIFEST_PATH, json).await?;
            return Ok(None);
        }
        let mode = match version {
            Some(v) => PutMode::Update(v),
            None => PutMode::Create,
        };
        let put = self
            .object_store
            .put_opts(
                &ObjectPath::from(MANIFEST_PATH),
                PutPayload::from(json),
                PutOptions {
                    mode,
                    ..PutOptions::default()
                },
            )
            .await?;
        Ok(Some(UpdateVersion {
            e_tag: put.e_tag,
            version: put.version,
        }))
    }

    /// Picks up another writer's replacement of the manifest: on an object
    /// store, asks for the manifest's ETag (one HEAD request) and reads it
    /// again when it differs from the one this process last read or wrote.
    /// A local store has no other writer. Answers whether it was read again.
    pub async fn refresh_manifest(&self) -> Result<bool, StoreError> {
        if self.local_root.is_some() {
            return Ok(false);
        }
        let head = match self
            .object_store
            .head(&ObjectPath::from(MANIFEST_PATH))
            .await
        {
            Ok(head) => head,
            Err(datafusion::object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let known = lock(&self.manifest_version)
            .as_ref()
            .and_then(|v| v.e_tag.clone());
        if head.e_tag.is_some() && head.e_tag == known {
            return Ok(false);
        }
        // Not while this process replaces it itself.
        let _maintenance = self.maintenance.lock().await;
        self.reload_manifest().await?;
        Ok(true)
    }

    /// Reads the manifest again now (a reader found it stale), after any
    /// change this process is making to it: never installs a manifest older
    /// than the one it just wrote.
    pub async fn reread_manifest(&self) -> Result<(), StoreError> {
        let _maintenance = self.maintenance.lock().await;
        self.reload_manifest().await
    }

    /// Reads the manifest again from the object store (another writer
    /// changed it) and swaps it in; callers hold `maintenance`, or are
    /// readers that never replace it. The files it adds or drops are other
    /// writers' or compaction's: this writer's buffer stays as it is.
    pub async fn reload_manifest(&self) -> Result<(), StoreError> {
        let (manifest, version) = read_manifest(self.object_store.as_ref()).await?;
        *lock(&self.manifest_version) = version;
        let _view = write(&self.view);
        *write(&self.manifest) = Arc::new(manifest);
        Ok(())
    }

    /// Deletes this writer's Parquet files that the manifest does not list
    /// (under the tenants' folders, and the table folders of the layout
    /// before tenants): another writer's unlisted file may be one it is
    /// about to list. Files named before writers are deleted while this is
    /// the only writer the manifest knows.
    async fn delete_orphans(&self) -> Result<(), StoreError> {
        let current = self.current();
        let listed: HashSet<&str> = current.files.iter().map(|f| f.path.as_str()).collect();
        let alone = current.writers.keys().all(|w| *w == self.writer);
        let found: Vec<_> = self.object_store.list(None).try_collect().await?;
        let mut unlisted = Vec::new();
        for meta in found {
            let path = meta.location.as_ref();
            let mine = match writer_of(path) {
                Some(writer) => writer == self.writer,
                None => alone,
            };
            if path.ends_with(".parquet") && mine && !listed.contains(path) {
                if self.local_root.is_some() {
                    tracing::info!(path = %meta.location, "Deleting a file no manifest lists (left by an interrupted flush or compaction).");
                    self.object_store.delete(&meta.location).await?;
                } else {
                    // In a bucket the file may have been listed until just
                    // now (compacted away while this writer was down), and
                    // a querier may still plan to read it: it goes after
                    // the deletion delay, as compaction's inputs do.
                    tracing::info!(path = %meta.location, "A file no manifest lists (left by an interrupted flush, or compacted away) goes after the deletion delay.");
                    unlisted.push(path.to_string());
                }
            }
        }
        self.drop_later(unlisted);
        Ok(())
    }

    /// The memory buffer.
    pub fn buffer(&self) -> &Buffer {
        &self.buffer
    }

    /// The local copies of files read from the bucket, if kept.
    pub fn read_cache(&self) -> Option<&ReadCache> {
        self.read_cache.as_deref()
    }

    /// Counters of background work.
    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// The current manifest.
    pub fn current(&self) -> Arc<Manifest> {
        Arc::clone(&read(&self.manifest))
    }

    /// Whether exports are written to a write-ahead log (and so need their
    /// protobuf record).
    pub fn has_wal(&self) -> bool {
        self.wal.is_some()
    }

    /// The options the store runs with.
    pub fn options(&self) -> &StoreOptions {
        &self.options
    }

    /// The window of item times `table` accepts now: no older than its
    /// retention, no further in the future than `max_future`.
    pub fn window(&self, table: Table) -> TimeWindow {
        let now = self.clock.now_ns();
        let nanos = |d: Duration| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        TimeWindow {
            not_before: now.saturating_sub(nanos(self.options.retention[table as usize])),
            not_after: now.saturating_add(nanos(self.options.max_future)),
        }
    }

    /// Stores a converted export: reserves room in the buffer, appends
    /// `record` (the export as protobuf, accepted in `window`) to the log and
    /// makes `batch` visible. Returns the record's sequence number.
    pub async fn append(
        &self,
        tenant: &Tenant,
        table: Table,
        window: TimeWindow,
        record: Bytes,
        batch: RecordBatch,
    ) -> Result<u64, StoreError> {
        let _gate = self.gate.read().await;
        let reservation = self.buffer.reserve(tenant, table, batch)?;
        let seq = match &self.wal {
            Some(wal) => wal.append(tenant, table, window, record).await?,
            None => self.next_seq.fetch_add(1, Ordering::Relaxed),
        };
        reservation.commit(seq);
        Ok(seq)
    }

    /// Puts a replayed log record's rows back in the buffer, whatever its
    /// limit: they were acknowledged.
    pub fn replay(&self, tenant: &Tenant, table: Table, seq: u64, batch: RecordBatch) {
        self.buffer.append_unchecked(tenant, table, seq, batch);
    }

    /// Whether a flush is due: the buffer is half full, or holds data older
    /// than the flush interval.
    pub fn flush_due(&self) -> bool {
        let used = self.buffer.used();
        used > 0
            && (used >= self.buffer.limit() / 2
                || lock(&self.last_flush).elapsed() >= self.options.flush_interval)
    }

    /// Writes everything buffered to Parquet, records the files in the
    /// manifest, drops the batches from the buffer and truncates the log.
    /// On failure nothing changes: the data stays buffered and logged.
    pub async fn flush(&self) -> Result<MaintenanceReport, StoreError> {
        let _maintenance = self.maintenance.lock().await;
        self.counted(self.flush_locked().await)
    }

    /// Counts a failed background task in the stats.
    fn counted<T>(&self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if result.is_err() {
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn flush_locked(&self) -> Result<MaintenanceReport, StoreError> {
        // Seal: with appends held off for an instant, start a new log segment;
        // every record before it is now in the buffer.
        let (through, sealed) = {
            let _gate = self.gate.write().await;
            let next = match &self.wal {
                Some(wal) => wal.rotate().await?,
                None => self.next_seq.load(Ordering::Relaxed),
            };
            (next - 1, Table::ALL.map(|t| self.buffer.batches(t)))
        };
        if sealed.iter().all(Vec::is_empty) {
            *lock(&self.last_flush) = Instant::now();
            return Ok(MaintenanceReport::default());
        }

        let mut written: Vec<FileMeta> = Vec::new();
        let mut report = MaintenanceReport::default();
        for table in Table::ALL {
            for (tenant, batches) in by_tenant(&sealed[table as usize]) {
                for chunk in chunks(&batches, self.options.flush_chunk_bytes) {
                    match self.write_chunk(&tenant, table, chunk).await {
                        Ok(files) => written.extend(files),
                        Err(e) => {
                            self.delete_now(paths_of(&written)).await;
                            return Err(e);
                        }
                    }
                }
            }
        }
        report.rows_flushed = written.iter().map(|f| f.rows).sum();
        report.files_written = written.len();
        let installed = self
            .update_manifest(
                |m| {
                    // Idempotent: a put that reached the store but whose
                    // answer was lost comes back as a failed precondition,
                    // and this change is applied again to its own result.
                    let new: Vec<FileMeta> = written
                        .iter()
                        .filter(|w| !m.files.iter().any(|f| f.path == w.path))
                        .cloned()
                        .collect();
                    m.files.extend(new);
                    let persisted = m.writers.entry(self.writer.clone()).or_default();
                    *persisted = (*persisted).max(through);
                    Ok(())
                },
                || self.drop_sealed(&sealed),
            )
            .await;
        if let Err(e) = installed
            && !self.applied_after_all(&written, through, &sealed).await
        {
            return Err(e);
        }
        // Only a successful flush resets the clock: a failed one is retried
        // at the next round.
        *lock(&self.last_flush) = Instant::now();
        self.stats.flushes.fetch_add(1, Ordering::Relaxed);
        self.stats.last_flush_ns.store(
            u64::try_from(self.clock.now_ns()).unwrap_or(0),
            Ordering::Relaxed,
        );
        self.count_written(&written);
        if let Some(wal) = &self.wal {
            // The data is durable in Parquet; a failure here only leaves
            // segments that the next start skips and deletes.
            if let Err(e) = wal.truncate(through).await {
                tracing::warn!(error = %e, "Deleting persisted WAL segments failed; retrying after the next flush.");
            }
        }
        tracing::debug!(
            rows = report.rows_flushed,
            files = report.files_written,
            through,
            "Flushed the buffer to Parquet."
        );
        Ok(report)
    }

    /// Drops batches a flush persisted from the buffer (under the view lock,
    /// as the manifest listing them is installed).
    fn drop_sealed(&self, sealed: &[Vec<Buffered>; 3]) {
        for table in Table::ALL {
            self.buffer
                .remove_first(table, sealed[table as usize].len());
        }
    }

    /// After a flush's manifest update failed: a put can fail after it was
    /// applied (its answer lost), so the stored manifest decides. If it
    /// records this writer's log through `through`, the flush happened:
    /// the manifest is installed and the batches dropped, as on success.
    /// Otherwise the flush's files it does not list are deleted. When it
    /// cannot be read, nothing is deleted (a file it may list must stay; what
    /// stays unlisted is deleted at the next start or by the compactor's
    /// sweep).
    async fn applied_after_all(
        &self,
        written: &[FileMeta],
        through: u64,
        sealed: &[Vec<Buffered>; 3],
    ) -> bool {
        let (stored, version) = match read_manifest(self.object_store.as_ref()).await {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "Reading the manifest after a failed update failed; the flush's files stay until it is known whether they are listed.");
                return false;
            }
        };
        if stored.persisted(&self.writer) >= through {
            tracing::info!("The manifest update was reported failed but had been applied.");
            *lock(&self.manifest_version) = version;
            let _view = write(&self.view);
            *write(&self.manifest) = Arc::new(stored);
            self.drop_sealed(sealed);
            return true;
        }
        let listed: HashSet<&str> = stored.files.iter().map(|f| f.path.as_str()).collect();
        let unlisted = written
            .iter()
            .filter(|f| !listed.contains(f.path.as_str()))
            .map(|f| f.path.clone())
            .collect();
        self.delete_now(unlisted).await;
        false
    }

    fn count_written(&self, files: &[FileMeta]) {
        self.stats
            .files_written
            .fetch_add(files.len() as u64, Ordering::Relaxed);
        self.stats.bytes_written.fetch_add(
            files.iter().map(|f| f.bytes).sum::<u64>(),
            Ordering::Relaxed,
        );
    }

    /// Sorts, splits by hour and writes one chunk of buffered batches.
    async fn write_chunk(
        &self,
        tenant: &Tenant,
        table: Table,
        chunk: &[Buffered],
    ) -> Result<Vec<FileMeta>, StoreError> {
        let batches: Vec<Arc<RecordBatch>> = chunk.iter().map(|b| Arc::clone(&b.batch)).collect();
        let row_group_rows = self.options.row_group_rows;
        // Sorting and encoding are CPU work: keep them off the async workers.
        let encoded = tokio::task::spawn_blocking(move || {
            let combined = concat_batches(&table.schema(), batches.iter().map(|b| b.as_ref()))?;
            sort_and_split(table, &combined)?
                .into_iter()
                .map(|(partition, sorted)| {
                    let (min, max) = time_range(table, &sorted);
                    let rows = sorted.num_rows() as u64;
                    let bytes = encode(table, &[sorted], row_group_rows)?;
                    Ok::<_, StoreError>((partition, min, max, rows, bytes))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| StoreError::Manifest(format!("flush task failed: {e}")))??;
        let mut files = Vec::new();
        for (partition, min_time, max_time, rows, bytes) in encoded {
            let path = self.new_path(tenant, table, partition);
            let size = bytes.len() as u64;
            if let Err(e) = self.put_durable(&path, bytes).await {
                self.delete_now(paths_of(&files)).await;
                return Err(e);
            }
            files.push(FileMeta {
                tenant: tenant.clone(),
                table: table.name().to_string(),
                path,
                partition,
                min_time,
                max_time,
                rows,
                bytes: size,
            });
        }
        Ok(files)
    }

    fn new_path(&self, tenant: &Tenant, table: Table, partition: i64) -> String {
        let written_ms = self.clock.now_ns().div_euclid(1_000_000);
        file_path(
            tenant,
            table,
            partition,
            &self.writer,
            written_ms,
            rand::random(),
        )
    }

    /// Puts an object and, on a local store, forces it and its folders to
    /// disk: a flush is durable before the log is truncated.
    async fn put_durable(&self, path: &str, bytes: Vec<u8>) -> Result<(), StoreError> {
        self.object_store
            .put(&ObjectPath::from(path), PutPayload::from(bytes))
            .await?;
        self.sync_local(path).await
    }

    async fn sync_local(&self, path: &str) -> Result<(), StoreError> {
        let Some(root) = self.local_root.clone() else {
            return Ok(());
        };
        let full = root.join(path);
        tokio::task::spawn_blocking(move || {
            File::open(&full)
                .and_then(|f| f.sync_all())
                .map_err(io_err(&full))?;
            // Every folder from the file's up to the root: a new partition's
            // folder entries must survive a crash too.
            let mut dir = full.parent();
            while let Some(d) = dir {
                File::open(d)
                    .and_then(|f| f.sync_all())
                    .map_err(io_err(d))?;
                if d == root {
                    break;
                }
                dir = d.parent();
            }
            Ok(())
        })
        .await
        .map_err(|e| StoreError::Manifest(format!("sync task failed: {e}")))?
    }

    /// Best-effort deletion of files no manifest lists (after a failure).
    async fn delete_now(&self, paths: Vec<String>) {
        for path in paths {
            if let Err(e) = self
                .object_store
                .delete(&ObjectPath::from(path.as_str()))
                .await
            {
                tracing::debug!(%path, error = %e, "Deleting an unlisted file failed; the next start deletes it.");
            }
        }
    }

    /// Schedules the deletion of files the manifest no longer lists.
    fn drop_later(&self, dropped: Vec<String>) {
        let at = Instant::now() + self.options.deletion_delay;
        lock(&self.garbage).extend(dropped.into_iter().map(|p| (at, p)));
    }

    /// Merges small files of the same hour into larger ones; see
    /// [`CompactionOptions`].
    pub async fn compact(&self) -> Result<MaintenanceReport, StoreError> {
        let _maintenance = self.maintenance.lock().await;
        self.counted(self.compact_locked().await)
    }

    async fn compact_locked(&self) -> Result<MaintenanceReport, StoreError> {
        let options = self.options.compaction;
        let now = self.clock.now_ns();
        let settle = i64::try_from(options.settle.as_nanos()).unwrap_or(i64::MAX);
        // Files of one tenant, table and hour are merged, never two tenants'.
        let mut groups: BTreeMap<(Tenant, String, i64), Vec<FileMeta>> = BTreeMap::new();
        for file in &self.current().files {
            if file.bytes < options.target_file_bytes {
                groups
                    .entry((file.tenant.clone(), file.table.clone(), file.partition))
                    .or_default()
                    .push(file.clone());
            }
        }
        let mut report = MaintenanceReport::default();
        // Bounded work per round, so a flush never waits long behind a
        // backlog of merges; the rest follows at the next rounds.
        let started = Instant::now();
        for ((tenant, table_name, partition), mut files) in groups {
            if started.elapsed() > Duration::from_secs(2) {
                break;
            }
            let settled = partition.saturating_add(HOUR_NS).saturating_add(settle) <= now;
            if files.len() < 2 || (files.len() < options.min_files && !settled) {
                continue;
            }
            let Some(table) = files[0].table() else {
                continue;
            };
            files.sort_by_key(|f| f.bytes);
            let mut picked = Vec::new();
            let mut total = 0;
            for file in files {
                if picked.len() >= 2 && total + file.bytes > options.target_file_bytes {
                    break;
                }
                total += file.bytes;
                picked.push(file);
            }
            if picked.len() < 2 {
                continue;
            }
            let path = self.new_path(&tenant, table, partition);
            let merged = match self.merge(&tenant, table, partition, &picked, path).await {
                Ok(merged) => merged,
                Err(e) => {
                    tracing::warn!(table = %table_name, partition, error = %e, "Compacting files failed.");
                    return Err(e);
                }
            };
            let dropped: Vec<String> = picked.iter().map(|f| f.path.clone()).collect();
            let installed = self
                .update_manifest(
                    |m| {
                        if m.files.iter().any(|f| f.path == merged.path) {
                            return Ok(true); // applied by an earlier attempt
                        }
                        // Another writer (retention, a compactor) may have
                        // dropped an input meanwhile: then this merge is void.
                        let listed = dropped
                            .iter()
                            .filter(|p| m.files.iter().any(|f| &f.path == *p))
                            .count();
                        if listed < dropped.len() {
                            return Ok(false);
                        }
                        m.files.retain(|f| !dropped.contains(&f.path));
                        m.files.push(merged.clone());
                        Ok(true)
                    },
                    || {},
                )
                .await;
            match installed {
                Ok(true) => self.drop_later(dropped),
                Ok(false) => {
                    self.delete_now(vec![merged.path]).await;
                    continue;
                }
                Err(e) => {
                    self.delete_now(vec![merged.path]).await;
                    return Err(e);
                }
            }
            self.count_written(std::slice::from_ref(&merged));
            self.stats
                .files_compacted
                .fetch_add(picked.len() as u64, Ordering::Relaxed);
            report.files_compacted += picked.len();
            report.files_written += 1;
            tracing::debug!(table = %table_name, partition, files = picked.len(), rows = merged.rows, "Compacted files.");
        }
        Ok(report)
    }

    /// Merges sorted files into one sorted file, streaming: DataFusion reads
    /// them and merges their rows in order, so memory stays at a few batches
    /// per file whatever their size.
    async fn merge(
        &self,
        tenant: &Tenant,
        table: Table,
        partition: i64,
        files: &[FileMeta],
        path: String,
    ) -> Result<FileMeta, StoreError> {
        let schema = table.schema();
        let ordering = LexOrdering::new(
            sort_key(table)
                .iter()
                .map(|name| {
                    Ok::<_, DataFusionError>(PhysicalSortExpr::new(
                        Arc::new(Column::new_with_schema(name, &schema)?),
                        SortOptions::default(),
                    ))
                })
                .collect::<Result<Vec<_>, _>>()?,
        )
        .expect("a non-empty ordering");
        let groups = files
            .iter()
            .map(|f| FileGroup::new(vec![PartitionedFile::new(f.path.clone(), f.bytes)]))
            .collect();
        let source = Arc::new(ParquetSource::new(Arc::clone(&schema)));
        let config = FileScanConfigBuilder::new(self.url.clone(), source)
            .with_file_groups(groups)
            .with_output_ordering(vec![ordering.clone()])
            .build();
        let merge =
            SortPreservingMergeExec::new(ordering, DataSourceExec::from_data_source(config));
        let mut stream = merge.execute(0, self.session.task_ctx())?;
        let location = ObjectPath::from(path.as_str());
        let mut writer = AsyncArrowWriter::try_new(
            BufWriter::new(Arc::clone(&self.object_store), location.clone()),
            Arc::clone(&schema),
            Some(writer_properties(table, self.options.row_group_rows)),
        )?;
        let (mut rows, mut min_time, mut max_time) = (0u64, i64::MAX, i64::MIN);
        let written = async {
            while let Some(batch) = stream.next().await {
                let batch = batch?;
                if batch.num_rows() == 0 {
                    continue;
                }
                let (lo, hi) = time_range(table, &batch);
                min_time = min_time.min(lo);
                max_time = max_time.max(hi);
                rows += batch.num_rows() as u64;
                writer.write(&batch).await?;
            }
            writer.close().await?;
            self.sync_local(&path).await?;
            Ok::<_, StoreError>(self.object_store.head(&location).await?.size)
        }
        .await;
        let bytes = match written {
            Ok(bytes) => bytes,
            Err(e) => {
                self.delete_now(vec![path]).await;
                return Err(e);
            }
        };
        let expected: u64 = files.iter().map(|f| f.rows).sum();
        if rows != expected {
            self.delete_now(vec![path]).await;
            return Err(StoreError::Manifest(format!(
                "compaction read {rows} rows from files listing {expected}"
            )));
        }
        Ok(FileMeta {
            tenant: tenant.clone(),
            table: table.name().to_string(),
            path,
            partition,
            min_time,
            max_time,
            rows,
            bytes,
        })
    }

    /// Drops every hour partition that ended before its table's retention.
    pub async fn enforce_retention(&self) -> Result<MaintenanceReport, StoreError> {
        let _maintenance = self.maintenance.lock().await;
        let current = self.current();
        let cutoffs = Table::ALL.map(|t| self.window(t).not_before);
        let expired = |f: &FileMeta| {
            f.table()
                .is_some_and(|t| f.partition.saturating_add(HOUR_NS) <= cutoffs[t as usize])
        };
        if !current.files.iter().any(&expired) {
            return Ok(MaintenanceReport::default());
        }
        let dropped = match self
            .update_manifest(
                |m| {
                    let (gone, kept) = std::mem::take(&mut m.files)
                        .into_iter()
                        .partition::<Vec<_>, _>(|f| expired(f));
                    m.files = kept;
                    Ok(paths_of(&gone))
                },
                || {},
            )
            .await
        {
            Ok(dropped) => dropped,
            Err(e) => {
                self.stats.failures.fetch_add(1, Ordering::Relaxed);
                return Err(e);
            }
        };
        let count = dropped.len();
        self.drop_later(dropped);
        self.stats
            .files_expired
            .fetch_add(count as u64, Ordering::Relaxed);
        tracing::info!(files = count, "Deleted partitions past their retention.");
        Ok(MaintenanceReport {
            files_expired: count,
            ..MaintenanceReport::default()
        })
    }

    /// Deletes dropped files whose delay has passed; `all` ignores the delay.
    pub async fn collect_garbage(&self, all: bool) {
        let now = Instant::now();
        let due: Vec<String> = {
            let mut garbage = lock(&self.garbage);
            let (due, keep) = garbage
                .drain(..)
                .partition::<Vec<_>, _>(|(at, _)| all || *at <= now);
            *garbage = keep;
            due.into_iter().map(|(_, p)| p).collect()
        };
        self.delete_now(due).await;
    }

    /// One round of background work: the manifest read again if another
    /// writer replaced it, then what `work` asks — a flush when due;
    /// retention, compaction and the sweep of files no manifest lists — and
    /// the deletion of dropped files whose delay has passed. Errors are
    /// logged; the data they concern stays where it was and the next round
    /// tries again.
    pub async fn maintain(&self, work: Work) {
        if let Err(e) = self.refresh_manifest().await {
            tracing::warn!(error = %e, "Reading the manifest again failed; retrying.");
        }
        if work.flush
            && self.flush_due()
            && let Err(e) = self.flush().await
        {
            tracing::warn!(error = %e, buffered_bytes = self.buffer.used(), "Flushing to Parquet failed; the data stays in the buffer and the log, retrying.");
        }
        if work.compact {
            if let Err(e) = self.enforce_retention().await {
                tracing::warn!(error = %e, "Enforcing retention failed; retrying.");
            }
            if let Err(e) = self.compact().await {
                tracing::warn!(error = %e, "Compaction failed; retrying.");
            }
            if let Err(e) = self.sweep().await {
                tracing::warn!(error = %e, "Looking for files no manifest lists failed; retrying.");
            }
        }
        self.collect_garbage(false).await;
    }

    /// On a shared object store, deletes the files no manifest has listed
    /// for a long time, whoever wrote them: those of a writer that crashed
    /// between writing a file and listing it and never came back, and those
    /// a compactor dropped but was stopped before deleting. A file counts
    /// once this process has seen it unlisted for the deletion delay (so
    /// queries that planned to read a file just dropped can finish) and it
    /// was written more than [`SWEEP_MIN_AGE`] ago (so a file a writer is
    /// about to list is left alone). Looks at most every [`SWEEP_EVERY`].
    /// On a local directory the start of the one writer deletes orphans.
    pub async fn sweep(&self) -> Result<usize, StoreError> {
        if self.local_root.is_some() {
            return Ok(0);
        }
        {
            let mut last = lock(&self.last_sweep);
            if last.is_some_and(|t| t.elapsed() < SWEEP_EVERY) {
                return Ok(0);
            }
            *last = Some(Instant::now());
        }
        self.sweep_now(SWEEP_MIN_AGE).await
    }

    /// One sweep, leaving files written less than `min_age` ago.
    async fn sweep_now(&self, min_age: Duration) -> Result<usize, StoreError> {
        let found: Vec<_> = self.object_store.list(None).try_collect().await?;
        let current = self.current();
        let listed: HashSet<&str> = current.files.iter().map(|f| f.path.as_str()).collect();
        let scheduled: HashSet<String> =
            lock(&self.garbage).iter().map(|(_, p)| p.clone()).collect();
        let now = Instant::now();
        let written_before = chrono::Utc::now()
            - chrono::Duration::from_std(min_age).unwrap_or(chrono::TimeDelta::MAX);
        let mut due = Vec::new();
        {
            let mut unlisted = lock(&self.unlisted);
            let mut still = std::collections::HashMap::new();
            for meta in found {
                let path = meta.location.as_ref();
                if !path.ends_with(".parquet") || listed.contains(path) || scheduled.contains(path)
                {
                    continue;
                }
                let since = unlisted.get(path).copied().unwrap_or(now);
                if now.duration_since(since) >= self.options.deletion_delay
                    && meta.last_modified < written_before
                {
                    due.push(path.to_string());
                } else {
                    still.insert(path.to_string(), since);
                }
            }
            *unlisted = still;
        }
        let count = due.len();
        if count > 0 {
            tracing::info!(
                files = count,
                "Deleting files no manifest has listed for a long time."
            );
            self.delete_now(due).await;
        }
        Ok(count)
    }

    /// Bytes of Parquet files per table.
    pub fn stored_bytes(&self, table: Table) -> u64 {
        self.current().files_of(table).map(|f| f.bytes).sum()
    }

    /// Parquet files per table.
    pub fn stored_files(&self, table: Table) -> usize {
        self.current().files_of(table).count()
    }
}

/// The manifest in `store` and its version (a new one if there is none).
async fn read_manifest(
    store: &dyn ObjectStore,
) -> Result<(Manifest, Option<UpdateVersion>), StoreError> {
    match store.get(&ObjectPath::from(MANIFEST_PATH)).await {
        Ok(found) => {
            let version = UpdateVersion {
                e_tag: found.meta.e_tag.clone(),
                version: found.meta.version.clone(),
            };
            let manifest = Manifest::parse(&found.bytes().await?).map_err(StoreError::Manifest)?;
            Ok((manifest, Some(version)))
        }
        Err(datafusion::object_store::Error::NotFound { .. }) => Ok((Manifest::default(), None)),
        Err(e) => Err(e.into()),
    }
}

/// A writer id: 1 to 32 lowercase letters and digits (it is part of file
/// names, between dashes).
fn check_writer_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty()
        || id.len() > 32
        || !id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return Err(StoreError::Manifest(format!(
            "writer id {id:?} must be 1 to 32 lowercase letters and digits"
        )));
    }
    Ok(())
}

/// The writer id kept in `<data dir>/writer-id`, made on first use: it
/// stays with the write-ahead log it numbers.
fn writer_id(data_dir: &Path) -> Result<String, StoreError> {
    let path = data_dir.join("writer-id");
    match std::fs::read_to_string(&path) {
        Ok(id) => {
            let id = id.trim().to_string();
            check_writer_id(&id)?;
            Ok(id)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = format!("w{:08x}", rand::random::<u32>());
            let temp = data_dir.join("writer-id.tmp");
            std::fs::write(&temp, format!("{id}\n")).map_err(io_err(&temp))?;
            File::open(&temp)
                .and_then(|f| f.sync_all())
                .map_err(io_err(&temp))?;
            std::fs::rename(&temp, &path).map_err(io_err(&path))?;
            Ok(id)
        }
        Err(e) => Err(io_err(&path)(e)),
    }
}

fn paths_of(files: &[FileMeta]) -> Vec<String> {
    files.iter().map(|f| f.path.clone()).collect()
}

/// The batches of each tenant, in their order.
fn by_tenant(batches: &[Buffered]) -> BTreeMap<Tenant, Vec<Buffered>> {
    let mut out: BTreeMap<Tenant, Vec<Buffered>> = BTreeMap::new();
    for b in batches {
        out.entry(b.tenant.clone()).or_default().push(b.clone());
    }
    out
}

/// Consecutive runs of batches holding about `bytes` of Arrow memory each.
fn chunks(batches: &[Buffered], bytes: usize) -> Vec<&[Buffered]> {
    let mut out = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, b) in batches.iter().enumerate() {
        size += b.batch.get_array_memory_size();
        if size >= bytes {
            out.push(&batches[start..=i]);
            start = i + 1;
            size = 0;
        }
    }
    if start < batches.len() {
        out.push(&batches[start..]);
    }
    out
}

impl Store {
    /// `tenant`'s buffered batches and files of `table`, taken together
    /// (no row in both or in neither).
    pub fn local_snapshot(&self, tenant: &Tenant, table: Table) -> TableSnapshot {
        let _view = read(&self.view);
        TableSnapshot {
            batches: self.buffer.snapshot(tenant, table),
            files: self
                .current()
                .files_of_tenant(tenant, table)
                .map(FileMeta::stored)
                .collect(),
            remote: Vec::new(),
        }
    }
}

impl Store {
    /// `tenant`'s buffered batches of `table` from log records after
    /// `after`: what a reader whose manifest records this writer's log
    /// through `after` finds in no file. `Err` with this writer's persisted
    /// position when the buffer no longer holds them all — the reader's
    /// manifest is older than the files that now hold them: it must read the
    /// manifest again.
    pub fn buffered_after(
        &self,
        tenant: &Tenant,
        table: Table,
        after: u64,
    ) -> Result<Vec<RecordBatch>, u64> {
        let _view = read(&self.view);
        let persisted = self.persisted_through();
        if after < persisted {
            return Err(persisted);
        }
        Ok(self.buffer.snapshot_after(tenant, table, after))
    }

    /// `tenant`'s files of `table` and every writer's persisted log position,
    /// from one manifest: a reader asks each ingester for its buffered rows
    /// after its position ([`Store::buffered_after`]).
    pub fn files_and_positions(
        &self,
        tenant: &Tenant,
        table: Table,
    ) -> (TableSnapshot, BTreeMap<String, u64>) {
        let _view = read(&self.view);
        let current = self.current();
        let snapshot = TableSnapshot {
            batches: self.buffer.snapshot(tenant, table),
            files: current
                .files_of_tenant(tenant, table)
                .map(FileMeta::stored)
                .collect(),
            remote: Vec::new(),
        };
        (snapshot, current.writers.clone())
    }
}

#[async_trait::async_trait]
impl TableSource for Store {
    async fn snapshot(
        &self,
        tenant: &Tenant,
        table: Table,
        _scan: &Scan,
    ) -> datafusion::error::Result<TableSnapshot> {
        Ok(self.local_snapshot(tenant, table))
    }

    fn object_store(&self) -> Option<(ObjectStoreUrl, Arc<dyn ObjectStore>)> {
        Some((self.url.clone(), Arc::clone(&self.object_store)))
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::TimestampNanosecondType;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;
    use crate::testing::batch;
    use smolder_common::clock::ManualClock;

    const DAY: i64 = 24 * HOUR_NS;
    /// 2026-11-22T00:00:00Z.
    const NOW: i64 = 1_795_305_600_000_000_000;

    fn options() -> StoreOptions {
        StoreOptions {
            deletion_delay: Duration::ZERO,
            ..StoreOptions::default()
        }
    }

    async fn open(dir: &Path, clock: &Arc<ManualClock>) -> (Store, Vec<Record>) {
        Store::open(dir, options(), Arc::clone(clock) as Arc<dyn Clock>)
            .await
            .unwrap()
    }

    async fn append(store: &Store, table: Table, service: &str, times: &[i64]) -> u64 {
        append_for(store, &Tenant::default(), table, service, times).await
    }

    async fn append_for(
        store: &Store,
        tenant: &Tenant,
        table: Table,
        service: &str,
        times: &[i64],
    ) -> u64 {
        let window = store.window(table);
        store
            .append(
                tenant,
                table,
                window,
                Bytes::from_static(b"export"),
                batch(table, service, times),
            )
            .await
            .unwrap()
    }

    fn rows(snapshot: &TableSnapshot) -> (usize, u64) {
        (
            snapshot.batches.iter().map(RecordBatch::num_rows).sum(),
            snapshot.files.iter().map(|f| f.rows).sum(),
        )
    }

    fn parquet_files(dir: &Path) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else if path.extension().is_some_and(|e| e == "parquet") {
                    out.push(path);
                }
            }
        }
        let mut out = Vec::new();
        walk(&dir.join("parquet"), &mut out);
        out.sort();
        out
    }

    /// A writer `id` with its log in `dir`, on the shared `bucket`.
    async fn writer_on(
        bucket: &Arc<datafusion::object_store::memory::InMemory>,
        dir: &Path,
        id: &str,
        clock: &Arc<ManualClock>,
    ) -> (Store, Vec<Record>) {
        Store::open_with(
            Arc::clone(bucket) as Arc<dyn ObjectStore>,
            None,
            &dir.join(id),
            StoreOptions {
                writer: Some(id.into()),
                ..options()
            },
            Arc::clone(clock) as Arc<dyn Clock>,
        )
        .await
        .unwrap()
    }

    /// Writer `a` on `bucket` with one flushed file of logs.
    async fn flushed_writer(
        bucket: &Arc<datafusion::object_store::memory::InMemory>,
        dir: &Path,
        clock: &Arc<ManualClock>,
    ) -> Store {
        let (a, _) = writer_on(bucket, dir, "a", clock).await;
        append(&a, Table::Logs, "svc", &[NOW - HOUR_NS]).await;
        a.flush().await.unwrap();
        a
    }

    /// An object no manifest lists at `path`.
    async fn put_stray(bucket: &datafusion::object_store::memory::InMemory, path: &str) {
        bucket
            .put(&ObjectPath::from(path), PutPayload::from_static(b"x"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn writers_sharing_a_bucket_lose_no_update_to_the_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let bucket = Arc::new(datafusion::object_store::memory::InMemory::new());
        let mut writers = Vec::new();
        for id in ["a", "b", "c"] {
            writers.push(writer_on(&bucket, dir.path(), id, &clock).await.0);
        }
        // Each writer appends and flushes eight times, all at once: every
        // flush reads the manifest, and most find it replaced by another
        // writer before their conditional put.
        let rounds = writers.iter().enumerate().map(|(w, store)| async move {
            for round in 0..8 {
                let at = NOW - HOUR_NS + (w as i64) * 1_000 + round;
                append(store, Table::Spans, "svc", &[at, at + 10]).await;
                store.flush().await.unwrap();
            }
        });
        futures::future::join_all(rounds).await;
        let (manifest, _) = read_manifest(bucket.as_ref()).await.unwrap();
        assert_eq!(manifest.files.len(), 24, "every flush's file is listed");
        assert_eq!(manifest.files.iter().map(|f| f.rows).sum::<u64>(), 48);
        for id in ["a", "b", "c"] {
            assert_eq!(manifest.persisted(id), 8, "{id}'s log position");
            let named = manifest
                .files
                .iter()
                .filter(|f| writer_of(&f.path) == Some(id));
            assert_eq!(named.count(), 8, "{id}'s files carry its id");
        }
        // A writer sees the others' files once it reads the manifest again
        // (one HEAD when nothing changed).
        let (d, _) = writer_on(&bucket, dir.path(), "d", &clock).await;
        append(&writers[0], Table::Logs, "svc", &[NOW - HOUR_NS]).await;
        writers[0].flush().await.unwrap();
        assert_eq!(d.current().files.len(), 24);
        assert!(d.refresh_manifest().await.unwrap());
        assert_eq!(d.current().files.len(), 25);
        assert!(
            !d.refresh_manifest().await.unwrap(),
            "unchanged: not read again"
        );
        // A writer that restarts replays nothing (all persisted), and its
        // orphan sweep leaves the others' files alone.
        drop(writers);
        let (a, replayed) = writer_on(&bucket, dir.path(), "a", &clock).await;
        assert!(replayed.is_empty());
        assert_eq!(a.current().files.len(), 25);
        let stored: Vec<_> = bucket.list(None).try_collect().await.unwrap();
        assert_eq!(
            stored
                .iter()
                .filter(|m| m.location.as_ref().ends_with(".parquet"))
                .count(),
            25
        );
    }

    #[tokio::test]
    async fn a_writer_deletes_only_its_own_unlisted_files_after_the_deletion_delay() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let bucket = Arc::new(datafusion::object_store::memory::InMemory::new());
        let a = flushed_writer(&bucket, dir.path(), &clock).await;
        // Files written but not (yet) listed: one of a's (a crashed flush),
        // one of b's (a flush in progress elsewhere).
        let tenant = Tenant::default();
        let mine = file_path(&tenant, Table::Logs, NOW - HOUR_NS, "a", 1, 1);
        let theirs = file_path(&tenant, Table::Logs, NOW - HOUR_NS, "b", 1, 2);
        for path in [&mine, &theirs] {
            put_stray(&bucket, path).await;
        }
        drop(a);
        let (a, _) = writer_on(&bucket, dir.path(), "a", &clock).await;
        assert_eq!(a.current().files.len(), 1);
        let exists = |path: &String| {
            let bucket = Arc::clone(&bucket);
            let path = ObjectPath::from(path.as_str());
            async move { bucket.head(&path).await.is_ok() }
        };
        // A querier may still read a file compacted away while a was down:
        // a's orphan goes after the deletion delay, not at once.
        assert!(exists(&mine).await, "kept for the deletion delay");
        // (zero in these tests)
        a.collect_garbage(false).await;
        assert!(!exists(&mine).await, "a's orphan is deleted");
        assert!(exists(&theirs).await, "b's file is b's business");
    }

    #[tokio::test]
    async fn a_reader_finds_every_row_once_in_files_or_in_the_buffers_after_their_positions() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let bucket = Arc::new(datafusion::object_store::memory::InMemory::new());
        let (ingester, _) = writer_on(&bucket, dir.path(), "a", &clock).await;
        let reader = Store::open_with(
            Arc::clone(&bucket) as Arc<dyn ObjectStore>,
            None,
            &dir.path().join("reader"),
            StoreOptions {
                writer: Some("r".into()),
                writes: false,
                ..options()
            },
            Arc::clone(&clock) as Arc<dyn Clock>,
        )
        .await
        .unwrap()
        .0;
        assert!(!reader.has_wal() && !dir.path().join("reader").exists());
        let tenant = Tenant::default();
        let seen = |reader: &Store| {
            let (snapshot, positions) = reader.files_and_positions(&tenant, Table::Spans);
            let after = positions.get("a").copied().unwrap_or(0);
            let files: u64 = snapshot.files.iter().map(|f| f.rows).sum();
            (files, ingester.buffered_after(&tenant, Table::Spans, after))
        };
        let rows =
            |batches: Vec<RecordBatch>| batches.iter().map(RecordBatch::num_rows).sum::<usize>();
        append(&ingester, Table::Spans, "svc", &[NOW - 10, NOW - 9]).await;
        let (files, buffered) = seen(&reader);
        assert_eq!((files, rows(buffered.unwrap())), (0, 2));
        ingester.flush().await.unwrap();
        append(&ingester, Table::Spans, "svc", &[NOW - 8]).await;
        // The reader's manifest is older than the flush: the ingester no
        // longer holds the flushed rows and says so.
        let (_, stale) = seen(&reader);
        assert_eq!(stale.unwrap_err(), 1, "persisted through record 1");
        reader.reload_manifest().await.unwrap();
        let (files, buffered) = seen(&reader);
        assert_eq!((files, rows(buffered.unwrap())), (2, 1), "each row once");
    }

    #[tokio::test]
    async fn the_sweep_deletes_long_unlisted_files_of_any_writer_once_seen_unlisted_for_the_delay()
    {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let bucket = Arc::new(datafusion::object_store::memory::InMemory::new());
        let a = flushed_writer(&bucket, dir.path(), &clock).await;
        let lost = file_path(&Tenant::default(), Table::Logs, NOW - HOUR_NS, "b", 1, 2);
        put_stray(&bucket, &lost).await;
        let count = |bucket: Arc<datafusion::object_store::memory::InMemory>| async move {
            let all: Vec<_> = bucket.list(None).try_collect().await.unwrap();
            all.iter()
                .filter(|m| m.location.as_ref().ends_with(".parquet"))
                .count()
        };
        // Written too recently: left alone however long it stays unlisted.
        assert_eq!(a.sweep_now(Duration::from_secs(3600)).await.unwrap(), 0);
        assert_eq!(a.sweep_now(Duration::from_secs(3600)).await.unwrap(), 0);
        // Old enough, and seen unlisted before (the deletion delay is zero
        // here): deleted; the listed file stays.
        assert_eq!(a.sweep_now(Duration::ZERO).await.unwrap(), 1);
        assert_eq!(count(Arc::clone(&bucket)).await, 1);
        assert_eq!(a.current().files.len(), 1);
    }

    #[tokio::test]
    async fn a_flush_whose_manifest_put_failed_after_it_was_applied_keeps_its_files_and_drops_its_rows()
     {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let bucket = Arc::new(datafusion::object_store::memory::InMemory::new());
        let (a, _) = writer_on(&bucket, dir.path(), "a", &clock).await;
        append(&a, Table::Logs, "svc", &[NOW - HOUR_NS]).await;
        // What a lost answer leaves: the files written and the manifest
        // replaced, while the writer believes the put failed.
        let (through, sealed) = (1, Table::ALL.map(|t| a.buffer.batches(t)));
        let written = a
            .write_chunk(
                &Tenant::default(),
                Table::Logs,
                &sealed[Table::Logs as usize],
            )
            .await
            .unwrap();
        let mut applied = Manifest::clone(&a.current());
        applied.files.extend(written.clone());
        applied.writers.insert("a".into(), through);
        bucket
            .put(
                &ObjectPath::from(MANIFEST_PATH),
                PutPayload::from(applied.to_json()),
            )
            .await
            .unwrap();
        assert!(a.applied_after_all(&written, through, &sealed).await);
        assert_eq!(
            rows(&a.local_snapshot(&Tenant::default(), Table::Logs)),
            (0, 1)
        );
        // Not applied: the files the stored manifest does not list go.
        append(&a, Table::Logs, "svc", &[NOW - HOUR_NS]).await;
        let sealed = Table::ALL.map(|t| a.buffer.batches(t));
        let written = a
            .write_chunk(
                &Tenant::default(),
                Table::Logs,
                &sealed[Table::Logs as usize],
            )
            .await
            .unwrap();
        assert!(!a.applied_after_all(&written, 2, &sealed).await);
        assert!(
            bucket
                .head(&ObjectPath::from(written[0].path.as_str()))
                .await
                .is_err()
        );
        assert_eq!(
            rows(&a.local_snapshot(&Tenant::default(), Table::Logs)),
            (1, 1)
        );
    }

    #[tokio::test]
    async fn a_manifest_from_before_writers_gives_its_log_position_to_the_first_writer() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let bucket = Arc::new(datafusion::object_store::memory::InMemory::new());
        let old = r#"{"version": 2, "persisted_through": 7, "next_file_id": 3, "files": []}"#;
        bucket
            .put(
                &ObjectPath::from(MANIFEST_PATH),
                PutPayload::from_static(old.as_bytes()),
            )
            .await
            .unwrap();
        let (a, _) = writer_on(&bucket, dir.path(), "a", &clock).await;
        assert_eq!(a.persisted_through(), 7);
        let (b, _) = writer_on(&bucket, dir.path(), "b", &clock).await;
        assert_eq!(b.persisted_through(), 0, "a new writer's log starts afresh");
        let (manifest, _) = read_manifest(bucket.as_ref()).await.unwrap();
        assert_eq!(manifest.persisted_through, 0);
        assert_eq!(manifest.persisted("a"), 7);
    }

    #[tokio::test]
    async fn a_flush_moves_rows_from_the_buffer_to_files_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let (store, replay) = open(dir.path(), &clock).await;
        assert!(replay.is_empty());
        append(&store, Table::Spans, "checkout", &[NOW + 10, NOW - HOUR_NS]).await;
        append(&store, Table::Logs, "checkout", &[NOW - 5]).await;
        assert_eq!(
            rows(&store.local_snapshot(&Tenant::default(), Table::Spans)),
            (2, 0)
        );

        let report = store.flush().await.unwrap();
        assert_eq!(report.rows_flushed, 3);
        assert_eq!(report.files_written, 3, "two hours of spans, one of logs");
        assert_eq!(
            rows(&store.local_snapshot(&Tenant::default(), Table::Spans)),
            (0, 2)
        );
        assert_eq!(
            rows(&store.local_snapshot(&Tenant::default(), Table::Logs)),
            (0, 1)
        );
        assert_eq!(store.buffer().used(), 0);
        assert_eq!(parquet_files(dir.path()).len(), 3);
        assert_eq!(store.persisted_through(), 2);

        // More data after the flush stays in the buffer; a restart replays
        // only that.
        append(&store, Table::Spans, "checkout", &[NOW - 1]).await;
        drop(store);
        let (store, replay) = open(dir.path(), &clock).await;
        assert_eq!(replay.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3]);
        assert_eq!(
            rows(&store.local_snapshot(&Tenant::default(), Table::Spans)),
            (0, 2)
        );
        // An empty flush changes nothing.
        assert_eq!(store.flush().await.unwrap(), MaintenanceReport::default());
    }

    #[tokio::test]
    async fn files_no_manifest_lists_are_deleted_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let (store, _) = open(dir.path(), &clock).await;
        append(&store, Table::Spans, "a", &[NOW]).await;
        store.flush().await.unwrap();
        drop(store);
        // A flush that crashed after writing its file, before the manifest
        // (and one of the layout before tenants).
        let orphan = dir.path().join(
            "parquet/tenant=default/spans/date=2026-11-22/hour=00/000000000099-00000000.parquet",
        );
        std::fs::write(&orphan, b"half a file").unwrap();
        let old = dir
            .path()
            .join("parquet/spans/date=2026-11-22/hour=00/000000000098-00000000.parquet");
        std::fs::create_dir_all(old.parent().unwrap()).unwrap();
        std::fs::write(&old, b"half a file").unwrap();
        let (store, _) = open(dir.path(), &clock).await;
        assert!(!orphan.exists());
        assert!(!old.exists());
        assert_eq!(parquet_files(dir.path()).len(), 1);
        assert_eq!(
            rows(&store.local_snapshot(&Tenant::default(), Table::Spans)),
            (0, 1)
        );
    }

    #[tokio::test]
    async fn retention_deletes_whole_hours_once_they_are_older_than_it() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let (store, _) = open(dir.path(), &clock).await;
        // Backfilled spans six days old, and spans of the current hour;
        // metrics from the same old hour.
        let old = NOW - 6 * DAY + 30 * 60 * 1_000_000_000;
        append(&store, Table::Spans, "a", &[old, old + 1]).await;
        append(&store, Table::Spans, "a", &[NOW + 5]).await;
        append(&store, Table::Metrics, "a", &[old]).await;
        store.flush().await.unwrap();
        assert_eq!(store.stored_files(Table::Spans), 2);

        // A day later the old hour is seven days old, but has not ended
        // before the cutoff yet: nothing goes.
        clock.advance(DAY);
        assert_eq!(store.enforce_retention().await.unwrap().files_expired, 0);
        // Once the whole hour is past the 7-day retention of spans, it goes;
        // metrics keep 30 days.
        clock.advance(HOUR_NS);
        let report = store.enforce_retention().await.unwrap();
        assert_eq!(report.files_expired, 1);
        assert_eq!(
            rows(&store.local_snapshot(&Tenant::default(), Table::Spans)),
            (0, 1)
        );
        assert_eq!(
            rows(&store.local_snapshot(&Tenant::default(), Table::Metrics)),
            (0, 1)
        );
        store.collect_garbage(false).await;
        assert_eq!(parquet_files(dir.path()).len(), 2);
        assert!(
            !dir.path().join("parquet/spans/date=2026-11-16").exists(),
            "the emptied partition folder is removed"
        );
        // The ingest window follows the clock: what retention would delete
        // at once is refused.
        let window = store.window(Table::Spans);
        assert_eq!(window.not_before, clock.now_ns() - 7 * DAY);
        assert_eq!(window.not_after, clock.now_ns() + HOUR_NS);
    }

    #[tokio::test]
    async fn compaction_merges_small_files_of_an_hour_into_one_sorted_file() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let (store, _) = open(dir.path(), &clock).await;
        let hour = NOW - 3 * HOUR_NS;
        for (i, service) in ["c", "a", "b"].iter().enumerate() {
            let t = hour + i as i64;
            append(&store, Table::Logs, service, &[t + 10, t]).await;
            store.flush().await.unwrap();
        }
        assert_eq!(store.stored_files(Table::Logs), 3);
        let report = store.compact().await.unwrap();
        assert_eq!(report.files_compacted, 3);
        assert_eq!(store.stored_files(Table::Logs), 1);
        assert_eq!(
            rows(&store.local_snapshot(&Tenant::default(), Table::Logs)),
            (0, 6)
        );
        store.collect_garbage(false).await;
        let files = parquet_files(dir.path());
        assert_eq!(files.len(), 1);

        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(&files[0]).unwrap())
            .unwrap()
            .build()
            .unwrap();
        let merged: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        let merged = concat_batches(&Table::Logs.schema(), &merged).unwrap();
        let times: Vec<i64> = merged
            .column_by_name("time")
            .unwrap()
            .as_primitive::<TimestampNanosecondType>()
            .values()
            .iter()
            .map(|t| t - hour)
            .collect();
        // Sorted by service (a, b, c), then time.
        assert_eq!(times, vec![1, 11, 2, 12, 0, 10]);
        let meta = &store.current().files[0];
        assert_eq!((meta.min_time, meta.max_time), (hour, hour + 12));

        // A single file is left alone.
        assert_eq!(store.compact().await.unwrap().files_compacted, 0);
    }

    #[tokio::test]
    async fn without_a_log_data_is_still_flushed_and_numbered() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let (store, _) = Store::open(
            dir.path(),
            StoreOptions {
                wal: None,
                ..options()
            },
            Arc::clone(&clock) as Arc<dyn Clock>,
        )
        .await
        .unwrap();
        assert_eq!(append(&store, Table::Spans, "a", &[NOW]).await, 1);
        assert_eq!(append(&store, Table::Spans, "a", &[NOW]).await, 2);
        store.flush().await.unwrap();
        assert_eq!(
            rows(&store.local_snapshot(&Tenant::default(), Table::Spans)),
            (0, 2)
        );
        assert!(!dir.path().join("wal").exists());
    }

    #[test]
    fn chunks_group_batches_by_size() {
        let b = |n| Buffered {
            seq: 0,
            tenant: Tenant::default(),
            batch: Arc::new(batch(Table::Logs, "a", &vec![0; n])),
        };
        let batches = vec![b(10), b(10), b(10)];
        let size = batches[0].batch.get_array_memory_size();
        assert_eq!(chunks(&batches, size * 2).len(), 2);
        assert_eq!(chunks(&batches, usize::MAX).len(), 1);
        assert_eq!(chunks(&batches, 1).len(), 3);
        assert!(chunks(&[], 1).is_empty());
    }

    #[tokio::test]
    async fn tenants_rows_stay_apart_in_the_buffer_the_files_compaction_and_replay() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(ManualClock::new(NOW));
        let acme = Tenant::parse("acme").unwrap();
        let other = Tenant::parse("other").unwrap();
        {
            let (store, _) = open(dir.path(), &clock).await;
            for _ in 0..2 {
                append_for(&store, &acme, Table::Spans, "a", &[NOW - 10, NOW - 9]).await;
                append_for(&store, &other, Table::Spans, "o", &[NOW - 8]).await;
                store.flush().await.unwrap();
            }
            assert_eq!(rows(&store.local_snapshot(&acme, Table::Spans)), (0, 4));
            assert_eq!(rows(&store.local_snapshot(&other, Table::Spans)), (0, 2));
            assert_eq!(
                rows(&store.local_snapshot(&Tenant::default(), Table::Spans)),
                (0, 0)
            );
            // Settled hours are compacted per tenant: two files each.
            clock.advance(3 * HOUR_NS);
            let report = store.compact().await.unwrap();
            assert_eq!(report.files_compacted, 4);
            assert_eq!(report.files_written, 2);
            for file in &store.current().files {
                assert!(
                    file.path
                        .starts_with(&format!("tenant={}/spans/", file.tenant)),
                    "{file:?}"
                );
            }
            assert_eq!(rows(&store.local_snapshot(&acme, Table::Spans)), (0, 4));
            assert_eq!(rows(&store.local_snapshot(&other, Table::Spans)), (0, 2));
            // Unflushed rows come back to their tenant after a restart.
            append_for(&store, &other, Table::Logs, "o", &[NOW]).await;
        }
        let (store, records) = open(dir.path(), &clock).await;
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].tenant, other);
        let _ = store;
        let files = parquet_files(dir.path());
        assert!(
            files
                .iter()
                .all(|p| p.to_string_lossy().contains("/parquet/tenant=")),
            "{files:?}"
        );
    }
}

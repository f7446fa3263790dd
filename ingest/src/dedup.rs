//! Retried exports stored once.
//!
//! An OTLP exporter that loses its connection after smolder wrote its export
//! to the log (a restart, a crash, a proxy cutting the connection) never sees
//! the answer and sends the same items again, as the specification tells it
//! to. Without this, both copies are stored and counted, and a span-based SLI
//! sees the retried failures twice.
//!
//! Each accepted item gets a 64-bit key: a span its trace and span ids (they
//! identify it); a log record or a metric data point everything it holds
//! (time, body or value, attributes, resource, scope — log records have no
//! id, and two points of one series at one instant are one point). An item
//! whose key was accepted for the same tenant and table within `window` is
//! dropped and counted (`smolder_otlp_duplicate_items_total`); the export is
//! still acknowledged, so the exporter stops retrying.
//!
//! The keys live in generations of a quarter window each, so a key is
//! remembered for between one window and a quarter more. They survive a
//! restart two ways: the write-ahead log's records go through the same
//! filter when they are replayed (keeping exactly what was kept before), and
//! every accepted key is appended to a key file per generation under
//! `<data dir>/dedup/`, read back at start, for the items already flushed to
//! Parquet and gone from the log. The key files are written through the page
//! cache: a process crash loses none; a power loss may lose the keys of the
//! last seconds before it (those retries are then stored twice).
//!
//! Memory: about 10–20 bytes per remembered key (the sets' buckets), counted
//! in the process's memory budget as `dedup` so that queries and requests
//! see what is left. Beyond `max_keys` per table the oldest generations are
//! forgotten early: at very high rates the window actually covered is
//! shorter than configured. The server lowers `max_keys` to what fits in a
//! quarter of the budget ([`Dedup::keys_within`]) and says so at start.

use std::collections::{HashSet, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::hash_utils::{RandomState, create_hashes};
use smolder_common::memory::{Consumer, MemoryBudget};
use smolder_common::sync::lock;
use smolder_common::{Table, Tenant};

/// The keys are already hashes: the set uses them as they are.
#[derive(Debug, Default, Clone, Copy)]
struct AsIs(u64);

impl Hasher for AsIs {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Keys = HashSet<u64, BuildHasherDefault<AsIs>>;

/// One quarter window of remembered keys.
#[derive(Debug)]
struct Generation {
    /// Its start (Unix ns, a multiple of its width).
    start: i64,
    keys: Keys,
    /// Its key file, open for appending (none without a directory).
    file: Option<std::io::BufWriter<std::fs::File>>,
}

#[derive(Debug, Default)]
struct Remembered {
    generations: VecDeque<Generation>,
    keys: usize,
    /// Bytes of the key sets counted in the budget.
    charged: usize,
}

/// Bytes a key takes in a set's buckets: the key and a control byte.
const BUCKET_BYTES: usize = std::mem::size_of::<u64>() + 1;

/// The most bytes `max_keys = 1` can cost over the three tables: a set's
/// buckets are at most about 2.3 per key (just after it grows).
const WORST_BYTES_PER_KEY: usize = 3 * BUCKET_BYTES * 23 / 10;

impl Remembered {
    /// Bytes the key sets' buckets hold now.
    fn bytes(&self) -> usize {
        self.generations
            .iter()
            .map(|g| g.keys.capacity() * BUCKET_BYTES)
            .sum()
    }
}

/// The retried-export filter of one process (see the module's doc).
#[derive(Debug)]
pub struct Dedup {
    window_ns: i64,
    max_keys: usize,
    dir: Option<PathBuf>,
    /// One per table, so that signals do not wait on each other.
    tables: [Mutex<Remembered>; 3],
    /// Where the key sets' memory is counted.
    budget: Arc<MemoryBudget>,
}

/// What [`Dedup::filter`] kept of a batch.
#[derive(Debug)]
pub struct Filtered {
    /// The items seen for the first time; `None` when none were.
    pub batch: Option<RecordBatch>,
    /// Items dropped as already accepted.
    pub duplicates: u64,
    /// The kept items' keys, to [`Dedup::commit`] once they are stored or
    /// [`Dedup::forget`] if they could not be.
    pub reserved: Reserved,
}

/// Keys reserved by [`Dedup::filter`].
#[derive(Debug)]
#[must_use = "commit the keys once the items are stored, or forget them"]
pub struct Reserved {
    table: Table,
    start: i64,
    keys: Vec<u64>,
}

const SEED: u64 = 0x736d_6f6c_6465_7221;

impl Dedup {
    /// A filter remembering keys for `window`, at most `max_keys` of them,
    /// with its key files in `dir` (none: in memory only); reads back the
    /// key files of the last window and deletes older ones.
    pub fn open(
        window: std::time::Duration,
        max_keys: usize,
        dir: Option<&Path>,
        now: i64,
    ) -> std::io::Result<Self> {
        let dedup = Self {
            window_ns: i64::try_from(window.as_nanos()).unwrap_or(i64::MAX).max(4),
            max_keys,
            dir: dir.map(Path::to_path_buf),
            tables: Default::default(),
            budget: MemoryBudget::unlimited(),
        };
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir)?;
        }
        dedup.forget_old_files(now)?;
        Ok(dedup)
    }

    /// Counts the key sets' memory in `budget` (as `dedup`).
    pub fn with_budget(mut self, budget: Arc<MemoryBudget>) -> Self {
        self.budget = budget;
        self
    }

    /// The most memory the key sets of all tables can hold with `max_keys`
    /// per table: a set's buckets are at most about 2.3 per key (just after
    /// it grows), and a generation may be past `max_keys` by one export.
    pub fn worst_case_bytes(max_keys: usize) -> usize {
        max_keys.saturating_mul(WORST_BYTES_PER_KEY)
    }

    /// The most keys per table whose worst case fits in `bytes`.
    pub fn keys_within(bytes: usize) -> usize {
        bytes / WORST_BYTES_PER_KEY
    }

    /// Brings the budget's count for `remembered` up to date.
    fn charge(&self, remembered: &mut Remembered) {
        let now = remembered.bytes();
        if now > remembered.charged {
            self.budget.take(Consumer::Dedup, now - remembered.charged);
        } else {
            self.budget
                .give_back(Consumer::Dedup, remembered.charged - now);
        }
        remembered.charged = now;
    }

    /// The width of a generation: a quarter of the window.
    fn width(&self) -> i64 {
        (self.window_ns / 4).max(1)
    }

    /// Deletes key files older than the window.
    fn forget_old_files(&self, now: i64) -> std::io::Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if let Some((_, start)) = parse_name(&path)
                && start + self.width() <= now - self.window_ns
            {
                std::fs::remove_file(&path)?;
            }
        }
        Ok(())
    }

    /// Reads back the key files of the last window (after the write-ahead
    /// log was replayed through [`Self::filter`]). Returns the keys read.
    pub fn load(&self, now: i64) -> std::io::Result<usize> {
        let Some(dir) = &self.dir else {
            return Ok(0);
        };
        let mut files: Vec<(Table, i64, PathBuf)> = std::fs::read_dir(dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter_map(|p| parse_name(&p).map(|(t, s)| (t, s, p)))
            .filter(|(_, start, _)| start + self.width() > now - self.window_ns)
            .collect();
        files.sort_by_key(|(_, start, _)| *start);
        let mut read = 0;
        for (table, start, path) in files {
            let bytes = std::fs::read(&path)?;
            let mut remembered = lock(&self.tables[table as usize]);
            let generation = self.generation(&mut remembered, table, start);
            // A torn last key (a crash mid-write) is ignored.
            for chunk in bytes.chunks_exact(8) {
                let key = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
                if generation.keys.insert(key) {
                    read += 1;
                }
            }
            remembered.keys = remembered.generations.iter().map(|g| g.keys.len()).sum();
            self.charge(&mut remembered);
        }
        Ok(read)
    }

    /// The generation starting at `start`, made (with its key file) if new.
    fn generation<'a>(
        &self,
        remembered: &'a mut Remembered,
        table: Table,
        start: i64,
    ) -> &'a mut Generation {
        let at = remembered
            .generations
            .iter()
            .position(|g| g.start >= start)
            .unwrap_or(remembered.generations.len());
        if remembered
            .generations
            .get(at)
            .is_none_or(|g| g.start != start)
        {
            let file = self.dir.as_ref().and_then(|dir| {
                let path = dir.join(file_name(table, start));
                match std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                {
                    Ok(f) => Some(std::io::BufWriter::new(f)),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "Cannot write a key file of retried exports; their keys are kept in memory only.");
                        None
                    }
                }
            });
            remembered.generations.insert(
                at,
                Generation {
                    start,
                    keys: Keys::default(),
                    file,
                },
            );
        }
        &mut remembered.generations[at]
    }

    /// Keeps the items of `batch` (of `tenant`'s `table`, accepted at `now`)
    /// not accepted before within the window, and reserves their keys: a
    /// later copy is a duplicate from now on. Once the kept items are
    /// stored, [`Self::commit`] writes the keys to the key file; if storing
    /// fails, [`Self::forget`] gives them up, so the exporter's retry is not
    /// taken for a duplicate of what was never stored.
    pub fn filter(
        &self,
        tenant: &Tenant,
        table: Table,
        batch: RecordBatch,
        now: i64,
    ) -> Result<Filtered, String> {
        let keys = keys(tenant, table, &batch)?;
        let width = self.width();
        let start = now - now.rem_euclid(width);
        let mut keep = Vec::with_capacity(keys.len());
        let mut reserved = Vec::with_capacity(keys.len());
        {
            let mut remembered = lock(&self.tables[table as usize]);
            self.expire(&mut remembered, table, now);
            self.generation(&mut remembered, table, start);
            let Remembered {
                generations,
                keys: count,
                ..
            } = &mut *remembered;
            let at = generations
                .iter()
                .position(|g| g.start == start)
                .unwrap_or_default();
            let (before, rest) = generations.make_contiguous().split_at_mut(at);
            let Some((current, after)) = rest.split_first_mut() else {
                return Err("keys of retried items: no current generation".to_string());
            };
            for key in keys {
                let seen = before
                    .iter()
                    .chain(after.iter())
                    .any(|g| g.keys.contains(&key))
                    || !current.keys.insert(key);
                if !seen {
                    *count += 1;
                    reserved.push(key);
                }
                keep.push(!seen);
            }
            self.charge(&mut remembered);
        }
        let kept = reserved.len();
        let duplicates = (keep.len() - kept) as u64;
        let batch = if kept == 0 {
            None
        } else if duplicates == 0 {
            Some(batch)
        } else {
            Some(
                filter_record_batch(&batch, &BooleanArray::from(keep))
                    .map_err(|e| format!("dropping retried items: {e}"))?,
            )
        };
        Ok(Filtered {
            batch,
            duplicates,
            reserved: Reserved {
                table,
                start,
                keys: reserved,
            },
        })
    }

    /// Drops the generations wholly out of the window, and the oldest ones
    /// while there are more keys than allowed.
    fn expire(&self, remembered: &mut Remembered, table: Table, now: i64) {
        let horizon = now - self.window_ns;
        while remembered
            .generations
            .front()
            .is_some_and(|g| g.start + self.width() <= horizon)
            || (remembered.keys > self.max_keys && remembered.generations.len() > 1)
        {
            if let Some(g) = remembered.generations.pop_front() {
                remembered.keys -= g.keys.len();
                if let Some(dir) = &self.dir {
                    let _ = std::fs::remove_file(dir.join(file_name(table, g.start)));
                }
            }
        }
        self.charge(remembered);
    }

    /// Writes the keys of stored items to their generation's key file.
    pub fn commit(&self, reserved: Reserved) {
        if reserved.keys.is_empty() || self.dir.is_none() {
            return;
        }
        let bytes: Vec<u8> = reserved.keys.iter().flat_map(|k| k.to_le_bytes()).collect();
        let mut remembered = lock(&self.tables[reserved.table as usize]);
        let Some(g) = remembered
            .generations
            .iter_mut()
            .find(|g| g.start == reserved.start)
        else {
            // Expired meanwhile: nothing to remember it for.
            return;
        };
        if let Some(file) = &mut g.file
            && let Err(e) = file.write_all(&bytes).and_then(|()| file.flush())
        {
            tracing::warn!(error = %e, "Writing the keys of accepted items failed; they are kept in memory only.");
            g.file = None;
        }
    }

    /// Gives up the keys of items that could not be stored.
    pub fn forget(&self, reserved: Reserved) {
        let mut remembered = lock(&self.tables[reserved.table as usize]);
        let Remembered {
            generations, keys, ..
        } = &mut *remembered;
        if let Some(g) = generations.iter_mut().find(|g| g.start == reserved.start) {
            for k in &reserved.keys {
                if g.keys.remove(k) {
                    *keys -= 1;
                }
            }
        }
    }
}

impl Drop for Dedup {
    fn drop(&mut self) {
        for table in &self.tables {
            let charged = lock(table).charged;
            self.budget.give_back(Consumer::Dedup, charged);
        }
    }
}

fn file_name(table: Table, start: i64) -> String {
    format!("{}-{start}.keys", table.name())
}

fn parse_name(path: &Path) -> Option<(Table, i64)> {
    let name = path.file_name()?.to_str()?.strip_suffix(".keys")?;
    let (table, start) = name.split_once('-')?;
    let table = Table::ALL.into_iter().find(|t| t.name() == table)?;
    Some((table, start.parse().ok()?))
}

/// The columns that identify an item of `table`: a span's ids, everything
/// of a log record or a data point.
fn identity(table: Table, batch: &RecordBatch) -> Vec<ArrayRef> {
    match table {
        Table::Spans => ["trace_id", "span_id"]
            .iter()
            .filter_map(|c| batch.column_by_name(c).cloned())
            .collect(),
        Table::Logs | Table::Metrics => batch.columns().to_vec(),
    }
}

/// One key per row: the identity columns hashed, with the tenant and table.
fn keys(tenant: &Tenant, table: Table, batch: &RecordBatch) -> Result<Vec<u64>, String> {
    let columns = identity(table, batch);
    let mut hashes = vec![0; batch.num_rows()];
    create_hashes(&columns, &RandomState::with_seed(SEED), &mut hashes)
        .map_err(|e| format!("keys of retried items: {e}"))?;
    let mut salt = std::hash::DefaultHasher::new();
    std::hash::Hash::hash(&(tenant.as_str(), table.name()), &mut salt);
    let salt = salt.finish();
    Ok(hashes.into_iter().map(|h| h ^ salt).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    use datafusion::arrow::array::StringArray;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    const SEC: i64 = 1_000_000_000;
    const T0: i64 = 1_767_225_600 * SEC;

    /// Spans by span id (the other columns do not matter to their key).
    fn spans(ids: &[&str]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("trace_id", DataType::Utf8, false),
            Field::new("span_id", DataType::Utf8, false),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec!["t1"; ids.len()])),
                Arc::new(StringArray::from(ids.to_vec())),
            ],
        )
        .unwrap()
    }

    fn ids(batch: &Option<RecordBatch>) -> Vec<String> {
        batch.as_ref().map_or_else(Vec::new, |b| {
            let a = b.column(1).as_any().downcast_ref::<StringArray>().unwrap();
            a.iter().map(|v| v.unwrap().to_string()).collect()
        })
    }

    fn pass(d: &Dedup, tenant: &Tenant, batch: RecordBatch, now: i64) -> (Vec<String>, u64) {
        let f = d.filter(tenant, Table::Spans, batch, now).unwrap();
        let kept = ids(&f.batch);
        d.commit(f.reserved);
        (kept, f.duplicates)
    }

    #[test]
    fn a_retried_export_within_the_window_is_stored_once_and_per_tenant() {
        let d = Dedup::open(Duration::from_secs(300), 1_000_000, None, T0).unwrap();
        let acme = Tenant::parse("acme").unwrap();
        let first = pass(&d, &Tenant::default(), spans(&["a", "b"]), T0);
        assert_eq!(first, (vec!["a".into(), "b".into()], 0));
        // The retry, with one new span, 4 minutes later: only the new one.
        let retry = pass(
            &d,
            &Tenant::default(),
            spans(&["a", "b", "c"]),
            T0 + 240 * SEC,
        );
        assert_eq!(retry, (vec!["c".into()], 2));
        // Another tenant's spans with the same ids are its own.
        assert_eq!(pass(&d, &acme, spans(&["a"]), T0 + 241 * SEC).1, 0);
        // Copies within one export are one item.
        assert_eq!(
            pass(&d, &acme, spans(&["x", "x"]), T0 + 242 * SEC),
            (vec!["x".into()], 1)
        );
        // Long after the window, the same ids are new items again.
        assert_eq!(
            pass(&d, &Tenant::default(), spans(&["a"]), T0 + 3_600 * SEC).1,
            0
        );
    }

    #[test]
    fn keys_survive_a_restart_through_the_key_files() {
        let dir = tempfile::tempdir().unwrap();
        let tenant = Tenant::default();
        {
            let d = Dedup::open(Duration::from_secs(300), 1_000_000, Some(dir.path()), T0).unwrap();
            pass(&d, &tenant, spans(&["a", "b"]), T0);
            pass(&d, &tenant, spans(&["c"]), T0 + 100 * SEC);
        }
        let d = Dedup::open(
            Duration::from_secs(300),
            1_000_000,
            Some(dir.path()),
            T0 + 200 * SEC,
        )
        .unwrap();
        assert_eq!(d.load(T0 + 200 * SEC).unwrap(), 3);
        let retry = pass(&d, &tenant, spans(&["a", "c", "d"]), T0 + 200 * SEC);
        assert_eq!(retry, (vec!["d".into()], 2));
        // Files out of the window are deleted at start, and not read.
        let later = T0 + 2 * 3_600 * SEC;
        let d = Dedup::open(Duration::from_secs(300), 1_000_000, Some(dir.path()), later).unwrap();
        assert_eq!(d.load(later).unwrap(), 0);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn keys_of_items_that_could_not_be_stored_are_given_up() {
        let d = Dedup::open(Duration::from_secs(300), 1_000_000, None, T0).unwrap();
        let tenant = Tenant::default();
        let f = d.filter(&tenant, Table::Spans, spans(&["a"]), T0).unwrap();
        // The buffer was full: the export failed, and its retry is stored.
        d.forget(f.reserved);
        assert_eq!(
            pass(&d, &tenant, spans(&["a"]), T0 + SEC),
            (vec!["a".into()], 0)
        );
    }

    #[test]
    fn remembered_keys_are_counted_in_the_memory_budget_until_they_expire() {
        let budget = MemoryBudget::new(1 << 30);
        let d = Dedup::open(Duration::from_secs(400), 1_000_000, None, T0)
            .unwrap()
            .with_budget(Arc::clone(&budget));
        let tenant = Tenant::default();
        let ids: Vec<String> = (0..10_000).map(|i| format!("{i:016x}")).collect();
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        pass(&d, &tenant, spans(&ids), T0);
        let held = budget.used_by(Consumer::Dedup);
        assert!(
            (10_000 * BUCKET_BYTES..=Dedup::worst_case_bytes(10_000)).contains(&held),
            "{held} bytes for 10,000 keys"
        );
        // Two windows later the old generation is gone, and its memory with it.
        pass(&d, &tenant, spans(&["late"]), T0 + 800 * SEC);
        assert!(budget.used_by(Consumer::Dedup) < held / 100);
        drop(d);
        assert_eq!(budget.used_by(Consumer::Dedup), 0);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn beyond_max_keys_the_oldest_generations_are_forgotten_first() {
        let d = Dedup::open(Duration::from_secs(400), 2, None, T0).unwrap();
        let tenant = Tenant::default();
        pass(&d, &tenant, spans(&["a", "b"]), T0);
        pass(&d, &tenant, spans(&["c", "d"]), T0 + 100 * SEC);
        // Four keys are more than two: the generation of a and b goes, the
        // newer one stays.
        let kept = pass(&d, &tenant, spans(&["a", "c", "e"]), T0 + 200 * SEC);
        assert_eq!(kept, (vec!["a".to_string(), "e".to_string()], 1));
    }
}

//! The evaluator's state in the bucket, so that it survives the machine.
//!
//! The SLO engines keep their API-managed definitions and rollups in
//! `slo.db` (and `tenants/<name>/slo.db`), alerting its alerts, silences,
//! history and outbox in `alerts.db`: SQLite databases in the data
//! directory, which make a restart on the same volume cheap and exact. With
//! the files in a bucket, an evaluator that loses its machine must not lose
//! these: every `cluster.state_interval` (and at a clean stop) the evaluator
//! copies each database whose content changed to `state/<name>` in the
//! bucket — a consistent copy taken with SQLite's `VACUUM INTO` while the
//! engines keep writing — and an evaluator starting on an empty data
//! directory takes them from there before it opens them. A copy is at most
//! one interval old: rollups newer than it are recomputed from the stored
//! telemetry at the next tick; alert events of that last interval are the
//! only state that can be lost.
//!
//! A database whose file and log have the same time and size as at its
//! last copy is not read again; one that changed is copied whole, and put
//! only if the copy differs from the last one put.
//!
//! A data directory that already has a database keeps it: the local one is
//! at least as new as any copy this evaluator made.

use std::collections::HashMap;
use std::hash::{Hash as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt as _, PutPayload};
use futures::TryStreamExt as _;
use smolder_common::Tenant;
use smolder_common::sync::lock;

/// Where the copies are in the bucket.
const PREFIX: &str = "state";

/// The evaluator's databases and their copies in a bucket.
pub(crate) struct StateCopies {
    bucket: Arc<dyn ObjectStore>,
    data_dir: PathBuf,
    /// A hash of the last copy put of each database.
    put: Mutex<HashMap<String, u64>>,
    /// The files' times and sizes when each database was last copied: an
    /// unchanged database is not copied again.
    stamps: Mutex<HashMap<String, Stamp>>,
}

/// Modification time and size of a database and its write-ahead log.
type Stamp = Vec<Option<(std::time::SystemTime, u64)>>;

fn stamp(path: &Path) -> Stamp {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    [path.to_path_buf(), PathBuf::from(wal)]
        .iter()
        .map(|p| {
            let meta = std::fs::metadata(p).ok()?;
            Some((meta.modified().ok()?, meta.len()))
        })
        .collect()
}

/// Whether `name` (relative to the data directory) is one of the
/// evaluator's databases: `slo.db`, `alerts.db` or `tenants/<t>/slo.db`.
fn is_database(name: &str) -> bool {
    match name.split('/').collect::<Vec<_>>()[..] {
        ["slo.db"] | ["alerts.db"] => true,
        ["tenants", tenant, "slo.db"] => Tenant::parse(tenant).is_ok_and(|t| !t.is_default()),
        _ => false,
    }
}

impl StateCopies {
    pub(crate) fn new(bucket: Arc<dyn ObjectStore>, data_dir: &Path) -> Self {
        Self {
            bucket,
            data_dir: data_dir.to_path_buf(),
            put: Mutex::new(HashMap::new()),
            stamps: Mutex::new(HashMap::new()),
        }
    }

    /// The databases in the data directory now.
    fn databases(&self) -> Vec<String> {
        let mut names: Vec<String> = ["slo.db", "alerts.db"]
            .into_iter()
            .filter(|n| self.data_dir.join(n).is_file())
            .map(String::from)
            .collect();
        if let Ok(entries) = std::fs::read_dir(self.data_dir.join("tenants")) {
            for entry in entries.flatten() {
                let name = format!("tenants/{}/slo.db", entry.file_name().to_string_lossy());
                if is_database(&name) && self.data_dir.join(&name).is_file() {
                    names.push(name);
                }
            }
        }
        names.sort();
        names
    }

    /// Takes the copies in the bucket of the databases the data directory
    /// does not have; returns their names.
    pub(crate) async fn restore(&self) -> anyhow::Result<Vec<String>> {
        let prefix = ObjectPath::from(PREFIX);
        let found: Vec<_> = self
            .bucket
            .list(Some(&prefix))
            .try_collect()
            .await
            .context("listing state/ in the bucket")?;
        let mut restored = Vec::new();
        for meta in found {
            let Some(name) = meta
                .location
                .as_ref()
                .strip_prefix(PREFIX)
                .and_then(|n| n.strip_prefix('/'))
                .map(str::to_string)
            else {
                continue;
            };
            let target = self.data_dir.join(&name);
            if !is_database(&name) || target.exists() {
                continue;
            }
            let bytes = self
                .bucket
                .get(&meta.location)
                .await
                .with_context(|| format!("reading {}", meta.location))?
                .bytes()
                .await
                .with_context(|| format!("reading {}", meta.location))?;
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let partial = target.with_extension("db.restoring");
            std::fs::write(&partial, &bytes)
                .and_then(|()| std::fs::rename(&partial, &target))
                .with_context(|| format!("writing {}", target.display()))?;
            lock(&self.put).insert(name.clone(), hash(&bytes));
            restored.push(name);
        }
        Ok(restored)
    }

    /// Puts a copy of each database whose content changed since its last
    /// copy; returns how many were put.
    pub(crate) async fn copy(&self) -> anyhow::Result<usize> {
        let mut put = 0;
        for name in self.databases() {
            let source = self.data_dir.join(&name);
            let before = stamp(&source);
            if lock(&self.stamps).get(&name) == Some(&before) {
                continue;
            }
            let bytes = tokio::task::spawn_blocking(move || snapshot(&source))
                .await
                .context("the snapshot task failed")??;
            let digest = hash(&bytes);
            if lock(&self.put).get(&name) == Some(&digest) {
                lock(&self.stamps).insert(name, before);
                continue;
            }
            let location = ObjectPath::from(format!("{PREFIX}/{name}"));
            self.bucket
                .put(&location, PutPayload::from(bytes))
                .await
                .with_context(|| format!("putting {location}"))?;
            lock(&self.put).insert(name.clone(), digest);
            lock(&self.stamps).insert(name, before);
            put += 1;
        }
        Ok(put)
    }
}

fn hash(bytes: &[u8]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}

/// A consistent copy of the SQLite database at `path`, taken while others
/// may write to it.
fn snapshot(path: &Path) -> anyhow::Result<Vec<u8>> {
    // VACUUM INTO refuses an existing file: a left-over of a crash goes.
    let copy = path.with_extension("db.snapshot");
    let _ = std::fs::remove_file(&copy);
    let conn = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", path.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()])
        .with_context(|| format!("copying {}", path.display()))?;
    let bytes =
        std::fs::read(&copy).with_context(|| format!("reading the copy of {}", path.display()));
    let _ = std::fs::remove_file(&copy);
    bytes
}

#[cfg(test)]
mod tests {
    use datafusion::object_store::memory::InMemory;

    use super::*;

    fn database(path: &Path, rows: i64) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let conn = rusqlite::Connection::open(path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE IF NOT EXISTS t (x INTEGER)")
            .unwrap();
        for x in 0..rows {
            conn.execute("INSERT INTO t VALUES (?1)", [x]).unwrap();
        }
    }

    fn rows(path: &Path) -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn only_the_evaluators_databases_are_copied_or_restored() {
        assert!(is_database("slo.db"));
        assert!(is_database("alerts.db"));
        assert!(is_database("tenants/acme/slo.db"));
        assert!(!is_database("tokens.db"));
        assert!(!is_database("tenants/../slo.db"));
        assert!(!is_database("tenants/acme/alerts.db"));
        assert!(!is_database("../slo.db"));
    }

    #[tokio::test]
    async fn a_new_data_directory_gets_the_last_copies_and_an_unchanged_database_is_not_put_again()
    {
        let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let old = tempfile::tempdir().unwrap();
        database(&old.path().join("slo.db"), 3);
        database(&old.path().join("alerts.db"), 1);
        database(&old.path().join("tenants/acme/slo.db"), 2);
        std::fs::write(old.path().join("tokens.db"), b"not copied").unwrap();
        let copies = StateCopies::new(Arc::clone(&bucket), old.path());
        assert_eq!(copies.copy().await.unwrap(), 3);
        assert_eq!(copies.copy().await.unwrap(), 0, "nothing changed");
        database(&old.path().join("slo.db"), 1);
        assert_eq!(copies.copy().await.unwrap(), 1, "slo.db changed");

        let new = tempfile::tempdir().unwrap();
        database(&new.path().join("alerts.db"), 5);
        let restored = StateCopies::new(Arc::clone(&bucket), new.path())
            .restore()
            .await
            .unwrap();
        assert_eq!(restored, ["slo.db", "tenants/acme/slo.db"]);
        assert_eq!(rows(&new.path().join("slo.db")), 4);
        assert_eq!(rows(&new.path().join("tenants/acme/slo.db")), 2);
        assert_eq!(
            rows(&new.path().join("alerts.db")),
            5,
            "a database the directory has is kept"
        );
        assert!(!new.path().join("tokens.db").exists());
    }
}

//! Rollups and API-managed definitions on disk, in SQLite (`slo.db` in the
//! data directory), so a restart neither rescans history nor forgets an SLO
//! created through the API.
//!
//! Each tick replaces the buckets it recomputed, for every SLO, in one
//! transaction; only buckets with events are stored. Budget exclusions made
//! through the API are kept here too (the buckets stay raw: exclusions are
//! applied when they are summed).

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension as _, params};

use crate::{Error, Result};
use smolder_common::sync::lock;

/// What the engine remembers of an SLO between runs.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredState {
    /// The rollup fingerprint the buckets were computed for.
    pub fingerprint: String,
    /// Events before this time (Unix ns) have been rolled up.
    pub watermark: i64,
    /// Where the SLO's history starts (Unix ns).
    pub horizon_start: i64,
}

/// One SLO's part of a tick: its new state and the buckets `from..=to` (all
/// groups) replaced by `rows`.
#[derive(Debug, Clone)]
pub struct Update {
    /// The SLO.
    pub slo: String,
    /// Its new state.
    pub state: StoredState,
    /// First bucket replaced.
    pub from: i64,
    /// Last bucket replaced.
    pub to: i64,
    /// (group as JSON, bucket, good, total), non-empty buckets only.
    pub rows: Vec<(String, i64, f64, f64)>,
}

/// A budget exclusion made through the API, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredExclusion {
    /// Its number.
    pub id: i64,
    /// The SLO it applies to.
    pub slo: String,
    /// The [`crate::exclusion::ExclusionSpec`] as JSON.
    pub spec: String,
    /// Who made it.
    pub created_by: String,
    /// When (Unix ns).
    pub created_ns: i64,
}

/// The SQLite database of the SLO engine.
#[derive(Debug)]
pub struct Db {
    conn: Mutex<Connection>,
}

fn storage(e: rusqlite::Error) -> Error {
    Error::Storage(e.to_string())
}

impl Db {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path).map_err(storage)?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory().map_err(storage)?)
    }

    fn init(conn: Connection) -> Result<Self> {
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             CREATE TABLE IF NOT EXISTS slo_state (
                 slo TEXT PRIMARY KEY,
                 fingerprint TEXT NOT NULL,
                 watermark INTEGER NOT NULL,
                 horizon_start INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS rollups (
                 slo TEXT NOT NULL,
                 grp TEXT NOT NULL,
                 bucket INTEGER NOT NULL,
                 good REAL NOT NULL,
                 total REAL NOT NULL,
                 PRIMARY KEY (slo, bucket, grp)
             ) WITHOUT ROWID;
             CREATE TABLE IF NOT EXISTS api_slos (
                 id TEXT PRIMARY KEY,
                 yaml TEXT NOT NULL,
                 updated_ns INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS exclusions (
                 id INTEGER PRIMARY KEY AUTOINCREMENT,
                 slo TEXT NOT NULL,
                 spec TEXT NOT NULL,
                 created_by TEXT NOT NULL,
                 created_ns INTEGER NOT NULL
             );",
        )
        .map_err(storage)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// The stored state of an SLO.
    pub fn state(&self, slo: &str) -> Result<Option<StoredState>> {
        self.conn()
            .query_row(
                "SELECT fingerprint, watermark, horizon_start FROM slo_state WHERE slo = ?1",
                params![slo],
                |r| {
                    Ok(StoredState {
                        fingerprint: r.get(0)?,
                        watermark: r.get(1)?,
                        horizon_start: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(storage)
    }

    /// The stored buckets of an SLO from bucket `from` on: (group, bucket,
    /// good, total), by bucket.
    pub fn rollups(&self, slo: &str, from: i64) -> Result<Vec<(String, i64, f64, f64)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT grp, bucket, good, total FROM rollups WHERE slo = ?1 AND bucket >= ?2 ORDER BY bucket",
            )
            .map_err(storage)?;
        let rows = stmt
            .query_map(params![slo, from], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    /// Applies one tick's updates atomically, and drops buckets older than
    /// each SLO's horizon.
    pub fn apply(&self, updates: &[Update]) -> Result<()> {
        if updates.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(storage)?;
        {
            let mut state = tx
                .prepare_cached(
                    "INSERT INTO slo_state (slo, fingerprint, watermark, horizon_start) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (slo) DO UPDATE SET fingerprint = ?2, watermark = ?3, horizon_start = ?4",
                )
                .map_err(storage)?;
            let mut delete = tx
                .prepare_cached("DELETE FROM rollups WHERE slo = ?1 AND bucket BETWEEN ?2 AND ?3")
                .map_err(storage)?;
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR REPLACE INTO rollups (slo, grp, bucket, good, total) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(storage)?;
            for u in updates {
                state
                    .execute(params![
                        u.slo,
                        u.state.fingerprint,
                        u.state.watermark,
                        u.state.horizon_start
                    ])
                    .map_err(storage)?;
                delete
                    .execute(params![u.slo, u.from, u.to])
                    .map_err(storage)?;
                for (grp, bucket, good, total) in &u.rows {
                    insert
                        .execute(params![u.slo, grp, bucket, good, total])
                        .map_err(storage)?;
                }
            }
        }
        tx.commit().map_err(storage)
    }

    /// Drops an SLO's buckets older than `bucket`.
    pub fn prune(&self, slo: &str, bucket: i64) -> Result<()> {
        self.conn()
            .execute(
                "DELETE FROM rollups WHERE slo = ?1 AND bucket < ?2",
                params![slo, bucket],
            )
            .map(drop)
            .map_err(storage)
    }

    /// Forgets an SLO's rollups and state.
    pub fn forget(&self, slo: &str) -> Result<()> {
        let conn = self.conn();
        conn.execute("DELETE FROM rollups WHERE slo = ?1", params![slo])
            .map_err(storage)?;
        conn.execute("DELETE FROM slo_state WHERE slo = ?1", params![slo])
            .map_err(storage)?;
        Ok(())
    }

    /// SLO documents stored through the API: (id, YAML).
    pub fn api_slos(&self) -> Result<Vec<(String, String)>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id, yaml FROM api_slos ORDER BY id")
            .map_err(storage)?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    /// The document an API-managed SLO was stored from.
    pub fn api_slo(&self, id: &str) -> Result<Option<String>> {
        self.conn()
            .query_row(
                "SELECT yaml FROM api_slos WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()
            .map_err(storage)
    }

    /// Stores (or replaces) an API-managed SLO document.
    pub fn put_api(&self, id: &str, yaml: &str, now_ns: i64) -> Result<()> {
        self.conn()
            .execute(
                "INSERT INTO api_slos (id, yaml, updated_ns) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET yaml = ?2, updated_ns = ?3",
                params![id, yaml, now_ns],
            )
            .map(drop)
            .map_err(storage)
    }

    /// Budget exclusions made through the API, oldest first.
    pub fn exclusions(&self) -> Result<Vec<StoredExclusion>> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare("SELECT id, slo, spec, created_by, created_ns FROM exclusions ORDER BY id")
            .map_err(storage)?;
        let rows = stmt
            .query_map([], |r| {
                Ok(StoredExclusion {
                    id: r.get(0)?,
                    slo: r.get(1)?,
                    spec: r.get(2)?,
                    created_by: r.get(3)?,
                    created_ns: r.get(4)?,
                })
            })
            .map_err(storage)?;
        rows.collect::<Result<_, _>>().map_err(storage)
    }

    /// Stores an exclusion of `slo` (its spec as JSON); returns its id.
    pub fn add_exclusion(
        &self,
        slo: &str,
        spec: &str,
        created_by: &str,
        created_ns: i64,
    ) -> Result<i64> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO exclusions (slo, spec, created_by, created_ns) VALUES (?1, ?2, ?3, ?4)",
            params![slo, spec, created_by, created_ns],
        )
        .map_err(storage)?;
        Ok(conn.last_insert_rowid())
    }

    /// Deletes exclusion `id` of `slo`; whether it existed.
    pub fn delete_exclusion(&self, slo: &str, id: i64) -> Result<bool> {
        self.conn()
            .execute(
                "DELETE FROM exclusions WHERE slo = ?1 AND id = ?2",
                params![slo, id],
            )
            .map(|n| n > 0)
            .map_err(storage)
    }

    /// Deletes every exclusion of `slo`.
    pub fn delete_exclusions(&self, slo: &str) -> Result<()> {
        self.conn()
            .execute("DELETE FROM exclusions WHERE slo = ?1", params![slo])
            .map(drop)
            .map_err(storage)
    }

    /// Deletes an API-managed SLO document; whether it existed.
    pub fn delete_api(&self, id: &str) -> Result<bool> {
        self.conn()
            .execute("DELETE FROM api_slos WHERE id = ?1", params![id])
            .map(|n| n > 0)
            .map_err(storage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tick_replaces_its_range() {
        let db = Db::in_memory().unwrap();
        let state = StoredState {
            fingerprint: "f".into(),
            watermark: 10,
            horizon_start: 0,
        };
        let update = |from, to, rows: Vec<(String, i64, f64, f64)>| Update {
            slo: "a".into(),
            state: state.clone(),
            from,
            to,
            rows,
        };
        db.apply(&[update(
            0,
            5,
            vec![("[]".into(), 1, 1.0, 2.0), ("[]".into(), 4, 3.0, 3.0)],
        )])
        .unwrap();
        db.apply(&[update(4, 6, vec![("[]".into(), 6, 1.0, 1.0)])])
            .unwrap();
        let rows = db.rollups("a", 0).unwrap();
        assert_eq!(
            rows,
            vec![("[]".into(), 1, 1.0, 2.0), ("[]".into(), 6, 1.0, 1.0)]
        );
        assert_eq!(db.state("a").unwrap(), Some(state));
        db.forget("a").unwrap();
        assert!(db.rollups("a", 0).unwrap().is_empty());
        assert_eq!(db.state("a").unwrap(), None);
    }
}

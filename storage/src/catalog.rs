//! The manifest: the one list of Parquet files that make up the stored data,
//! and, per writer, the last write-ahead-log record they cover.
//!
//! It is a JSON document (`manifest.json` at the root of the object store),
//! replaced whole by an atomic put after every flush, compaction and retention
//! pass. A file exists for queries exactly when the manifest lists it: a file
//! written by a flush that crashed before its manifest was put is an orphan and
//! is deleted at the next start, and its rows come back from the log instead.
//!
//! Several processes may write to one bucket (ingesters, a compactor). Each
//! has a writer id, kept beside its write-ahead log: its files' names carry
//! it (so two writers never pick one name, and a writer deletes only its own
//! orphans), and the manifest keeps each writer's last persisted log record
//! (format 3). On an object store the manifest is replaced with a
//! conditional put against the version that was read; a writer that finds
//! it changed reads it again and applies its change again
//! (`Store::update_manifest`), so no writer's update is lost.
//!
//! Each file is one tenant's (format 2; the files of a format-1 manifest,
//! written before tenants existed, are the default tenant's). A format-2
//! manifest's single `persisted_through` is claimed by the first writer that
//! opens it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use smolder_common::{StoredFile, Table, Tenant};

/// Version of the manifest format.
pub(crate) const MANIFEST_VERSION: u32 = 3;
/// The formats before writers (2) and before tenants (1), still read.
const OLDER_VERSIONS: [u32; 2] = [1, 2];

/// Path of the manifest in the object store.
pub(crate) const MANIFEST_PATH: &str = "manifest.json";

/// One Parquet file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Whose rows the file holds.
    #[serde(default)]
    pub tenant: Tenant,
    /// Table name (`spans`, `logs`, `metrics`).
    pub table: String,
    /// Path in the object store.
    pub path: String,
    /// Start of the hour partition the file belongs to, ns since the epoch.
    pub partition: i64,
    /// Smallest time in the file, ns.
    pub min_time: i64,
    /// Largest time in the file, ns.
    pub max_time: i64,
    /// Rows.
    pub rows: u64,
    /// Size in bytes.
    pub bytes: u64,
}

impl FileMeta {
    /// The table the file belongs to.
    pub fn table(&self) -> Option<Table> {
        Table::ALL.into_iter().find(|t| t.name() == self.table)
    }

    /// The file as the query engine sees it.
    pub fn stored(&self) -> StoredFile {
        StoredFile {
            path: self.path.clone(),
            size: self.bytes,
            rows: self.rows,
            min_time: self.min_time,
            max_time: self.max_time,
        }
    }
}

/// The manifest document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Format version.
    pub version: u32,
    /// Before writers (format 2): every record of the one write-ahead log up
    /// to this sequence number is in the files. Claimed by the first writer
    /// that opens the store (then 0).
    #[serde(default)]
    pub persisted_through: u64,
    /// Per writer id: every record of its write-ahead log up to this
    /// sequence number is in the files below (or was deliberately dropped by
    /// retention).
    #[serde(default)]
    pub writers: BTreeMap<String, u64>,
    /// Identifier for the next file written (format 2; names now carry
    /// their writer and time instead).
    #[serde(default)]
    pub next_file_id: u64,
    /// The files.
    pub files: Vec<FileMeta>,
}

impl Default for Manifest {
    fn default() -> Self {
        Self {
            version: MANIFEST_VERSION,
            persisted_through: 0,
            writers: BTreeMap::new(),
            next_file_id: 1,
            files: Vec::new(),
        }
    }
}

impl Manifest {
    /// Parses a manifest, refusing versions this build does not know.
    pub fn parse(bytes: &[u8]) -> Result<Self, String> {
        let mut manifest: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if OLDER_VERSIONS.contains(&manifest.version) {
            // Format 1's files have no tenant and are read as the default's;
            // format 2's persisted_through is claimed by the first writer.
            manifest.version = MANIFEST_VERSION;
        }
        if manifest.version != MANIFEST_VERSION {
            return Err(format!(
                "manifest version {} is not supported (this build reads version {MANIFEST_VERSION})",
                manifest.version
            ));
        }
        Ok(manifest)
    }

    /// The manifest as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec_pretty(self).expect("a manifest serializes")
    }

    /// The last record of `writer`'s log that the files hold.
    pub fn persisted(&self, writer: &str) -> u64 {
        self.writers.get(writer).copied().unwrap_or(0)
    }

    /// The files of `table`, of every tenant.
    pub fn files_of(&self, table: Table) -> impl Iterator<Item = &FileMeta> {
        self.files.iter().filter(move |f| f.table == table.name())
    }

    /// The files of `table` that hold `tenant`'s rows.
    pub fn files_of_tenant<'a>(
        &'a self,
        tenant: &'a Tenant,
        table: Table,
    ) -> impl Iterator<Item = &'a FileMeta> {
        self.files_of(table).filter(move |f| &f.tenant == tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_round_trips_and_unknown_versions_are_refused() {
        let manifest = Manifest {
            persisted_through: 42,
            files: vec![FileMeta {
                tenant: Tenant::parse("acme").unwrap(),
                table: "spans".into(),
                path: "spans/date=2026-11-22/hour=10/000000000001-0a0b0c0d.parquet".into(),
                partition: 0,
                min_time: 1,
                max_time: 2,
                rows: 3,
                bytes: 4,
            }],
            ..Manifest::default()
        };
        let parsed = Manifest::parse(&manifest.to_json()).unwrap();
        assert_eq!(parsed, manifest);
        assert_eq!(parsed.files_of(Table::Spans).count(), 1);
        assert_eq!(parsed.files_of(Table::Logs).count(), 0);
        assert_eq!(parsed.files[0].table(), Some(Table::Spans));
        let future = String::from_utf8(manifest.to_json())
            .unwrap()
            .replace("\"version\": 3", "\"version\": 9");
        assert!(
            Manifest::parse(future.as_bytes())
                .unwrap_err()
                .contains("version 9")
        );
    }

    #[test]
    fn a_manifest_from_before_tenants_is_the_default_tenants() {
        let old = r#"{"version": 1, "persisted_through": 3, "next_file_id": 2, "files": [
            {"table": "logs", "path": "logs/date=2026-11-22/hour=10/000000000001-00000001.parquet",
             "partition": 0, "min_time": 1, "max_time": 2, "rows": 3, "bytes": 4}]}"#;
        let manifest = Manifest::parse(old.as_bytes()).unwrap();
        assert_eq!(manifest.version, MANIFEST_VERSION);
        assert!(manifest.files[0].tenant.is_default());
        let default = Tenant::default();
        assert_eq!(manifest.files_of_tenant(&default, Table::Logs).count(), 1);
        let acme = Tenant::parse("acme").unwrap();
        assert_eq!(manifest.files_of_tenant(&acme, Table::Logs).count(), 0);
    }
}

//! The write-ahead log: every accepted export is appended here before it is
//! acknowledged, so that a crash loses nothing a client was told is stored.
//!
//! Records hold the export as protobuf bytes (smaller than its Arrow form, and
//! converted again in the same deterministic way on replay) with the time
//! window its items were accepted in, so that replay keeps exactly the items
//! that were acknowledged whatever the clock says then. One writer thread
//! owns the open segment; receivers hand it records over a channel and wait.
//! The writer takes every record that arrived meanwhile, writes them with one
//! `write` and, under [`SyncPolicy::Always`], covers them all with one `fsync`
//! before answering: group commit.
//!
//! On disk, `wal/` holds segments named by the sequence number of their first
//! record (`00000000000000000001.wal`), each starting with [`MAGIC`] and then
//! records of
//!
//! ```text
//! u32 LE payload length | u32 LE CRC-32 of the rest | u64 LE sequence | u8 table
//!   | i64 LE not_before | i64 LE not_after | u8 tenant length | tenant | payload
//! ```
//!
//! (Format 2, `SMOLWAL2`, had no tenant: its records are read as the default
//! tenant's, so a log written before tenants existed replays unchanged.)
//!
//! Once the records up to some sequence number are durable in Parquet, the
//! persister calls [`Wal::rotate`] and then [`Wal::truncate`]: whole segments
//! holding only such records are deleted. [`Wal::open`] skips records already
//! persisted, so a crash between the two loses nothing and duplicates nothing.
//!
//! On start [`Wal::open`] reads every segment. A record cut short or failing its
//! checksum at the very end of the last segment is a torn write from a crash:
//! the tail is truncated with a warning. A bad record anywhere else is
//! corruption and stops the start with the file and offset named, rather than
//! silently skipping acknowledged data.
//!
//! When a write fails (disk full, I/O error), the writer cuts the segment back
//! to its last complete record and answers the waiting receivers with an error,
//! which they turn into a retryable "unavailable"; the next append tries again,
//! so ingest recovers by itself once space returns.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use smolder_common::{Table, Tenant};
use tokio::sync::oneshot;

use crate::TimeWindow;

/// The first bytes of every segment.
pub const MAGIC: &[u8; 8] = b"SMOLWAL3";
/// Segments of format 2: records without a tenant.
const MAGIC_V2: &[u8; 8] = b"SMOLWAL2";
/// A record's fixed header (format 2 ends after the time window).
const HEADER_V2: usize = 4 + 4 + 8 + 1 + 8 + 8;
const HEADER: usize = HEADER_V2 + 1;

/// When appended records are forced to stable storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncPolicy {
    /// `fsync` before acknowledging (group commit): nothing acknowledged is
    /// lost even if the machine loses power.
    Always,
    /// Acknowledge once written to the operating system and `fsync` at this
    /// interval: survives a crash of smolder, may lose up to the interval on a
    /// power loss or kernel crash.
    Interval(Duration),
    /// Never `fsync`; the operating system writes back when it likes.
    Never,
}

impl std::str::FromStr for SyncPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "always" => Ok(Self::Always),
            "off" | "never" => Ok(Self::Never),
            other => humantime::parse_duration(other)
                .ok()
                .filter(|d| !d.is_zero())
                .map(Self::Interval)
                .ok_or_else(|| {
                    format!("invalid WAL sync policy {other:?}: use \"always\", \"off\" or an interval such as \"100ms\"")
                }),
        }
    }
}

impl std::fmt::Display for SyncPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Never => f.write_str("off"),
            Self::Interval(every) => write!(f, "{}", humantime::format_duration(*every)),
        }
    }
}

impl serde::Serialize for SyncPolicy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SyncPolicy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A WAL failure.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// Writing or syncing failed; the record was not stored.
    #[error("writing the write-ahead log failed: {0}")]
    Write(String),
    /// The writer thread is gone (the server is shutting down).
    #[error("the write-ahead log is closed")]
    Closed,
    /// Reading the log at start failed.
    #[error("{path}: {message}")]
    Corrupt {
        /// The segment.
        path: PathBuf,
        /// What is wrong and where.
        message: String,
    },
    /// Opening or listing the WAL directory failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// A record read back at start.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Its sequence number, increasing by one per record.
    pub seq: u64,
    /// The tenant whose export it was.
    pub tenant: Tenant,
    /// The table its items belong to.
    pub table: Table,
    /// The time window the export's items were accepted in.
    pub window: TimeWindow,
    /// The export request as protobuf bytes.
    pub payload: Bytes,
}

struct Append {
    tenant: Tenant,
    table: Table,
    window: TimeWindow,
    payload: Bytes,
    done: oneshot::Sender<Result<u64, WalError>>,
}

enum Command {
    Append(Append),
    /// Close the current segment (unless it is empty) and start a new one;
    /// answers with the sequence number the next record will get.
    Rotate(oneshot::Sender<Result<u64, WalError>>),
    /// Delete the closed segments whose records all have sequence numbers up
    /// to the given one; answers with the number of segments deleted.
    Truncate(u64, oneshot::Sender<Result<usize, WalError>>),
}

/// Options of the log.
#[derive(Debug, Clone, Copy)]
pub struct WalOptions {
    /// When to `fsync`.
    pub sync: SyncPolicy,
    /// Start a new segment once the current one is this large.
    pub segment_bytes: u64,
}

impl Default for WalOptions {
    fn default() -> Self {
        Self {
            sync: SyncPolicy::Always,
            segment_bytes: 64 << 20,
        }
    }
}

/// The write-ahead log's handle for receivers.
#[derive(Debug)]
pub struct Wal {
    commands: mpsc::Sender<Command>,
}

impl Wal {
    /// Opens (creating if needed) the log in `dir`, returning the records it
    /// holds after `persisted_through` (the last sequence number already
    /// durable elsewhere), in order, for replay. Numbering continues after
    /// both.
    pub fn open(
        dir: &Path,
        options: WalOptions,
        persisted_through: u64,
    ) -> Result<(Self, Vec<Record>), WalError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WalError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let segments = list_segments(dir)?;

        let mut records = Vec::new();
        let last = segments.len().checked_sub(1);
        for (i, (_, path)) in segments.iter().enumerate() {
            read_segment(path, Some(i) == last, &mut records)?;
        }
        let continues = records.last().map_or_else(
            || segments.last().map_or(1, |(first, _)| *first),
            |r| r.seq + 1,
        );
        let next_seq = continues.max(persisted_through + 1);
        records.retain(|r| r.seq > persisted_through);

        let writer = match segments.last() {
            // Numbering jumps (more was persisted than this log holds, e.g.
            // while it was disabled): start a new segment at the new number,
            // since numbers run without gaps inside a segment.
            Some(_) if next_seq != continues => {
                Writer::create(dir, next_seq, options).map_err(io_err(dir))?
            }
            Some((_, path)) => {
                let mut file = OpenOptions::new()
                    .append(true)
                    .open(path)
                    .map_err(io_err(path))?;
                let len = file.seek(SeekFrom::End(0)).map_err(io_err(path))?;
                Writer {
                    dir: dir.to_path_buf(),
                    file,
                    path: path.clone(),
                    first_seq: segments.last().map_or(next_seq, |(first, _)| *first),
                    len,
                    next_seq,
                    options,
                    last_sync: Instant::now(),
                    dirty: false,
                }
            }
            None => Writer::create(dir, next_seq, options).map_err(io_err(dir))?,
        };
        writer.truncate(persisted_through)?;
        let (commands, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("smolder-wal".into())
            .spawn(move || writer.run(rx))
            .map_err(io_err(dir))?;
        Ok((Self { commands }, records))
    }

    /// Appends an export whose items were accepted in `window` and waits until
    /// it is stored as the sync policy asks; returns its sequence number.
    pub async fn append(
        &self,
        tenant: &Tenant,
        table: Table,
        window: TimeWindow,
        payload: Bytes,
    ) -> Result<u64, WalError> {
        let (done, result) = oneshot::channel();
        self.commands
            .send(Command::Append(Append {
                tenant: tenant.clone(),
                table,
                window,
                payload,
                done,
            }))
            .map_err(|_| WalError::Closed)?;
        result.await.map_err(|_| WalError::Closed)?
    }

    /// Starts a new segment (unless the current one is empty) and returns the
    /// sequence number the next record will get: every record before it is
    /// in a closed segment.
    pub async fn rotate(&self) -> Result<u64, WalError> {
        let (done, result) = oneshot::channel();
        self.commands
            .send(Command::Rotate(done))
            .map_err(|_| WalError::Closed)?;
        result.await.map_err(|_| WalError::Closed)?
    }

    /// Deletes the closed segments holding only records up to `through`;
    /// returns how many were deleted.
    pub async fn truncate(&self, through: u64) -> Result<usize, WalError> {
        let (done, result) = oneshot::channel();
        self.commands
            .send(Command::Truncate(through, done))
            .map_err(|_| WalError::Closed)?;
        result.await.map_err(|_| WalError::Closed)?
    }
}

/// The segments in `dir` with the sequence numbers their names start at,
/// oldest first.
fn list_segments(dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let mut segments: Vec<(u64, PathBuf)> = fs::read_dir(dir)
        .map_err(|source| WalError::Io {
            path: dir.to_path_buf(),
            source,
        })?
        .filter_map(Result::ok)
        .filter_map(|entry| {
            let path = entry.path();
            let first = path
                .file_name()?
                .to_str()?
                .strip_suffix(".wal")?
                .parse()
                .ok()?;
            Some((first, path))
        })
        .collect();
    segments.sort();
    Ok(segments)
}

/// Reads the records of one segment into `out`; truncates a torn tail when
/// `is_last`.
fn read_segment(path: &Path, is_last: bool, out: &mut Vec<Record>) -> Result<(), WalError> {
    let corrupt = |message: String| WalError::Corrupt {
        path: path.to_path_buf(),
        message,
    };
    let io_err = |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut data = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut data))
        .map_err(io_err)?;
    if data.len() < MAGIC.len() {
        if is_last {
            // Created but never written: a crash right after rotating.
            tracing::warn!(path = %path.display(), "Rewriting the header of an empty WAL segment.");
            fs::write(path, MAGIC).map_err(io_err)?;
            return Ok(());
        }
        return Err(corrupt("segment shorter than its header".into()));
    }
    if &data[..MAGIC.len()] == b"SMOLWAL1" {
        return Err(corrupt(
            "written by an older smolder (log format 1, without time windows); \
             move the data directory aside to start afresh"
                .into(),
        ));
    }
    let with_tenant = match &data[..MAGIC.len()] {
        m if m == MAGIC => true,
        m if m == MAGIC_V2 => false,
        _ => return Err(corrupt("not a smolder WAL segment (bad magic)".into())),
    };
    let data = Bytes::from(data);
    let mut offset = MAGIC.len();
    while offset < data.len() {
        match parse_record(&data, offset, with_tenant) {
            Ok((record, end)) => {
                // Numbers run without gaps inside a segment, and increase
                // from one segment to the next.
                let first_here = offset == MAGIC.len();
                if let Some(prev) = out.last()
                    && (record.seq <= prev.seq || (!first_here && record.seq != prev.seq + 1))
                {
                    return Err(corrupt(format!(
                        "record at byte {offset} has sequence {} after {}",
                        record.seq, prev.seq
                    )));
                }
                out.push(record);
                offset = end;
            }
            Err(problem) if is_last && problem.may_be_torn => {
                tracing::warn!(
                    path = %path.display(),
                    offset,
                    dropped_bytes = data.len() - offset,
                    problem = %problem.message,
                    "Truncating a torn write at the end of the WAL (a crash during an append that was never acknowledged)."
                );
                let file = OpenOptions::new().write(true).open(path).map_err(io_err)?;
                file.set_len(offset as u64).map_err(io_err)?;
                file.sync_all().map_err(io_err)?;
                return Ok(());
            }
            Err(problem) => {
                return Err(corrupt(format!(
                    "corrupt record at byte {offset}: {}; the records after it were acknowledged \
                     and are not skipped silently — move the segment aside to start without them",
                    problem.message
                )));
            }
        }
    }
    Ok(())
}

struct BadRecord {
    message: String,
    /// The damage reaches the end of the data, as a write cut short does.
    may_be_torn: bool,
}

fn parse_record(
    data: &Bytes,
    offset: usize,
    with_tenant: bool,
) -> Result<(Record, usize), BadRecord> {
    let rest = &data[offset..];
    let header = if with_tenant { HEADER } else { HEADER_V2 };
    if rest.len() < header {
        return Err(BadRecord {
            message: format!("{} bytes left, less than a record header", rest.len()),
            may_be_torn: true,
        });
    }
    let len = u32::from_le_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(rest[4..8].try_into().expect("4 bytes"));
    let tenant_len = if with_tenant {
        usize::from(rest[HEADER_V2])
    } else {
        0
    };
    let body = offset + header + tenant_len;
    let end = body + len;
    if end > data.len() {
        return Err(BadRecord {
            message: format!("record of {len} bytes runs past the end of the file"),
            may_be_torn: true,
        });
    }
    if crc32(&data[offset + 8..end]) != crc {
        return Err(BadRecord {
            message: "checksum mismatch".into(),
            may_be_torn: end == data.len(),
        });
    }
    let seq = u64::from_le_bytes(rest[8..16].try_into().expect("8 bytes"));
    let window = TimeWindow {
        not_before: i64::from_le_bytes(rest[17..25].try_into().expect("8 bytes")),
        not_after: i64::from_le_bytes(rest[25..33].try_into().expect("8 bytes")),
    };
    let table = match rest[16] {
        0 => Table::Spans,
        1 => Table::Logs,
        2 => Table::Metrics,
        other => {
            return Err(BadRecord {
                message: format!("unknown table code {other}"),
                may_be_torn: false,
            });
        }
    };
    let tenant = if with_tenant {
        let name = std::str::from_utf8(&data[offset + HEADER..body]).unwrap_or_default();
        Tenant::parse(name).map_err(|e| BadRecord {
            message: e,
            may_be_torn: false,
        })?
    } else {
        Tenant::default_tenant()
    };
    Ok((
        Record {
            seq,
            tenant,
            table,
            window,
            payload: data.slice(body..end),
        },
        end,
    ))
}

fn table_code(table: Table) -> u8 {
    match table {
        Table::Spans => 0,
        Table::Logs => 1,
        Table::Metrics => 2,
    }
}

fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Owns the open segment; runs on its own thread.
struct Writer {
    dir: PathBuf,
    file: File,
    path: PathBuf,
    /// Sequence number of the segment's first record (its name).
    first_seq: u64,
    /// Bytes of complete records (and the header) in the segment.
    len: u64,
    next_seq: u64,
    options: WalOptions,
    last_sync: Instant,
    /// Written but not yet synced (interval policy).
    dirty: bool,
}

impl Writer {
    fn create(dir: &Path, first_seq: u64, options: WalOptions) -> io::Result<Self> {
        let path = dir.join(format!("{first_seq:020}.wal"));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)?;
        file.write_all(MAGIC)?;
        file.sync_all()?;
        // The new file's directory entry must survive a crash too.
        File::open(dir)?.sync_all()?;
        Ok(Self {
            dir: dir.to_path_buf(),
            file,
            path,
            first_seq,
            len: MAGIC.len() as u64,
            next_seq: first_seq,
            options,
            last_sync: Instant::now(),
            dirty: false,
        })
    }

    fn run(mut self, commands: mpsc::Receiver<Command>) {
        let mut batch = Vec::new();
        let mut buf = Vec::new();
        loop {
            let first = match self.options.sync {
                SyncPolicy::Interval(every) if self.dirty => {
                    let wait = every.saturating_sub(self.last_sync.elapsed());
                    match commands.recv_timeout(wait) {
                        Ok(command) => Some(command),
                        Err(mpsc::RecvTimeoutError::Timeout) => None,
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
                _ => match commands.recv() {
                    Ok(command) => Some(command),
                    Err(_) => break,
                },
            };
            // Take every command that arrived meanwhile: the appends among them
            // share one write and one sync; a rotation or truncation waits for
            // the appends queued before it.
            for command in first.into_iter().chain(commands.try_iter()) {
                match command {
                    Command::Append(append) => batch.push(append),
                    Command::Rotate(done) => {
                        self.commit(&mut batch, &mut buf);
                        let _ = done.send(self.rotate_if_used());
                    }
                    Command::Truncate(through, done) => {
                        self.commit(&mut batch, &mut buf);
                        let _ = done.send(self.truncate(through));
                    }
                }
            }
            self.commit(&mut batch, &mut buf);
            if let SyncPolicy::Interval(every) = self.options.sync
                && self.dirty
                && self.last_sync.elapsed() >= every
                && let Err(e) = self.sync()
            {
                tracing::error!(error = %e, "Syncing the WAL failed; retrying at the next interval.");
            }
        }
        if self.dirty {
            let _ = self.sync();
        }
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()?;
        self.dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Writes a group of appends and answers each of them.
    fn commit(&mut self, batch: &mut Vec<Append>, buf: &mut Vec<u8>) {
        if batch.is_empty() {
            return;
        }
        buf.clear();
        let first_seq = self.next_seq;
        for (i, append) in batch.iter().enumerate() {
            let seq = first_seq + i as u64;
            let start = buf.len();
            buf.extend_from_slice(&(append.payload.len() as u32).to_le_bytes());
            buf.extend_from_slice(&[0; 4]);
            buf.extend_from_slice(&seq.to_le_bytes());
            buf.push(table_code(append.table));
            buf.extend_from_slice(&append.window.not_before.to_le_bytes());
            buf.extend_from_slice(&append.window.not_after.to_le_bytes());
            let tenant = append.tenant.as_str().as_bytes();
            // At most 64 bytes: Tenant::parse saw to it.
            buf.push(u8::try_from(tenant.len()).expect("a tenant name fits a byte"));
            buf.extend_from_slice(tenant);
            buf.extend_from_slice(&append.payload);
            let crc = crc32(&buf[start + 8..]);
            buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        }
        match self.write(buf, batch.len() as u64) {
            Ok(()) => {
                for (i, append) in batch.drain(..).enumerate() {
                    let _ = append.done.send(Ok(first_seq + i as u64));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, records = batch.len(), "Appending to the WAL failed; the exports are refused as unavailable.");
                for append in batch.drain(..) {
                    let _ = append.done.send(Err(WalError::Write(e.to_string())));
                }
            }
        }
    }

    /// Writes `records` encoded records and syncs them as the policy asks.
    fn write(&mut self, buf: &[u8], records: u64) -> io::Result<()> {
        // A previous failure may have left a partial record; cut it off first.
        let on_disk = self.file.metadata()?.len();
        if on_disk != self.len {
            self.file.set_len(self.len)?;
        }
        if let Err(e) = self
            .file
            .write_all(buf)
            .and_then(|()| match self.options.sync {
                SyncPolicy::Always => self.file.sync_data(),
                _ => Ok(()),
            })
        {
            // Best effort now; retried before the next write.
            let _ = self.file.set_len(self.len);
            return Err(e);
        }
        self.len += buf.len() as u64;
        self.next_seq += records;
        self.dirty = self.options.sync != SyncPolicy::Always;
        if self.len >= self.options.segment_bytes
            && let Err(e) = self.rotate()
        {
            // The records are stored; keep appending to this segment.
            tracing::warn!(error = %e, "Starting a new WAL segment failed; retrying after the next append.");
        }
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        self.file.sync_all()?;
        let next = Self::create(&self.dir, self.next_seq, self.options)?;
        tracing::debug!(from = %self.path.display(), to = %next.path.display(), "Started a new WAL segment.");
        *self = next;
        Ok(())
    }

    fn rotate_if_used(&mut self) -> Result<u64, WalError> {
        if self.len > MAGIC.len() as u64 {
            self.rotate().map_err(|e| WalError::Write(e.to_string()))?;
        }
        Ok(self.next_seq)
    }

    /// Deletes closed segments whose records all have sequence numbers up to
    /// `through`: a segment qualifies when the next one starts at or before
    /// `through + 1`. The open segment is never deleted.
    fn truncate(&self, through: u64) -> Result<usize, WalError> {
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| WalError::Io { path, source }
        };
        let firsts = list_segments(&self.dir)?;
        let mut deleted = 0;
        for pair in firsts.windows(2) {
            let ((first, path), (next_first, _)) = (&pair[0], &pair[1]);
            if *first >= self.first_seq || *next_first > through + 1 {
                break;
            }
            fs::remove_file(path).map_err(io_err(path))?;
            deleted += 1;
        }
        if deleted > 0 {
            File::open(&self.dir)
                .and_then(|d| d.sync_all())
                .map_err(io_err(&self.dir))?;
            tracing::debug!(
                deleted,
                through,
                "Deleted WAL segments persisted to Parquet."
            );
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(segment_bytes: u64) -> WalOptions {
        WalOptions {
            sync: SyncPolicy::Always,
            segment_bytes,
        }
    }

    async fn append_n(wal: &Wal, n: usize) -> Vec<u64> {
        let mut seqs = Vec::new();
        for i in 0..n {
            let payload = Bytes::from(format!("export {i}"));
            seqs.push(
                wal.append(&Tenant::default(), Table::Spans, TimeWindow::ANY, payload)
                    .await
                    .unwrap(),
            );
        }
        seqs
    }

    fn segments(dir: &Path) -> Vec<PathBuf> {
        let mut paths: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        paths.sort();
        paths
    }

    #[tokio::test]
    async fn records_come_back_in_order_after_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, replay) = Wal::open(dir.path(), options(64 << 20), 0).unwrap();
        assert!(replay.is_empty());
        assert_eq!(append_n(&wal, 3).await, vec![1, 2, 3]);
        wal.append(
            &Tenant::default(),
            Table::Metrics,
            TimeWindow::ANY,
            Bytes::from_static(b"m"),
        )
        .await
        .unwrap();
        drop(wal);
        let (wal, replay) = Wal::open(dir.path(), options(64 << 20), 0).unwrap();
        let seqs: Vec<_> = replay.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4]);
        assert_eq!(replay[1].payload, Bytes::from("export 1"));
        assert_eq!(replay[3].table, Table::Metrics);
        // Numbering continues after the replayed records.
        assert_eq!(append_n(&wal, 1).await, vec![5]);
    }

    #[tokio::test]
    async fn concurrent_appends_share_commits_and_get_distinct_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(64 << 20), 0).unwrap();
        let wal = std::sync::Arc::new(wal);
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let wal = std::sync::Arc::clone(&wal);
                tokio::spawn(async move {
                    wal.append(
                        &Tenant::default(),
                        Table::Logs,
                        TimeWindow::ANY,
                        Bytes::from(format!("{i}")),
                    )
                    .await
                    .unwrap()
                })
            })
            .collect();
        let mut seqs = Vec::new();
        for t in tasks {
            seqs.push(t.await.unwrap());
        }
        seqs.sort();
        assert_eq!(seqs, (1..=50).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn segments_rotate_and_replay_across_them() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(64), 0).unwrap();
        append_n(&wal, 10).await;
        drop(wal);
        assert!(segments(dir.path()).len() > 3, "{:?}", segments(dir.path()));
        let (_, replay) = Wal::open(dir.path(), options(64), 0).unwrap();
        assert_eq!(
            replay.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (1..=10).collect::<Vec<_>>()
        );
    }

    #[tokio::test]
    async fn a_torn_tail_is_truncated_and_appending_continues() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(64 << 20), 0).unwrap();
        append_n(&wal, 3).await;
        drop(wal);
        let path = segments(dir.path()).pop().unwrap();
        let good_len = fs::metadata(&path).unwrap().len();
        // Half of a fourth record: its header promises more than follows.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&100u32.to_le_bytes()).unwrap();
        file.write_all(&[7; 20]).unwrap();
        drop(file);
        let (wal, replay) = Wal::open(dir.path(), options(64 << 20), 0).unwrap();
        assert_eq!(replay.len(), 3);
        assert_eq!(fs::metadata(&path).unwrap().len(), good_len);
        assert_eq!(append_n(&wal, 1).await, vec![4]);
        drop(wal);
        let (_, replay) = Wal::open(dir.path(), options(64 << 20), 0).unwrap();
        assert_eq!(replay.len(), 4);
    }

    #[tokio::test]
    async fn corruption_before_the_tail_is_reported_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(64 << 20), 0).unwrap();
        append_n(&wal, 3).await;
        drop(wal);
        let path = segments(dir.path()).pop().unwrap();
        let mut data = fs::read(&path).unwrap();
        // Flip a byte in the first record's payload.
        data[MAGIC.len() + HEADER] ^= 0xff;
        fs::write(&path, &data).unwrap();
        let err = Wal::open(dir.path(), options(64 << 20), 0).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("corrupt record at byte 8: checksum mismatch"),
            "{message}"
        );
        assert!(message.contains(&path.display().to_string()), "{message}");
        // Nothing was truncated.
        assert_eq!(fs::read(&path).unwrap(), data);
    }

    #[test]
    fn sync_policies_parse() {
        assert_eq!("always".parse::<SyncPolicy>(), Ok(SyncPolicy::Always));
        assert_eq!("off".parse::<SyncPolicy>(), Ok(SyncPolicy::Never));
        assert_eq!(
            "100ms".parse::<SyncPolicy>(),
            Ok(SyncPolicy::Interval(Duration::from_millis(100)))
        );
        assert!(
            "sometimes"
                .parse::<SyncPolicy>()
                .unwrap_err()
                .contains("\"sometimes\"")
        );
        assert!("0s".parse::<SyncPolicy>().is_err());
    }

    #[tokio::test]
    async fn persisted_records_are_truncated_and_skipped_on_replay() {
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(64 << 20), 0).unwrap();
        append_n(&wal, 3).await;
        assert_eq!(wal.rotate().await.unwrap(), 4);
        // An empty segment is not rotated again.
        assert_eq!(wal.rotate().await.unwrap(), 4);
        let window = TimeWindow {
            not_before: -5,
            not_after: 77,
        };
        wal.append(
            &Tenant::default(),
            Table::Logs,
            window,
            Bytes::from_static(b"4"),
        )
        .await
        .unwrap();
        append_n(&wal, 1).await;
        assert_eq!(segments(dir.path()).len(), 2);
        assert_eq!(
            wal.truncate(2).await.unwrap(),
            0,
            "record 3 is not persisted"
        );
        assert_eq!(wal.truncate(3).await.unwrap(), 1);
        assert_eq!(segments(dir.path()).len(), 1);
        drop(wal);
        // A crash after persisting through 3 but before truncating: replay
        // starts after 3 and keeps each record's window.
        let (wal, replay) = Wal::open(dir.path(), options(64 << 20), 3).unwrap();
        assert_eq!(replay.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![4, 5]);
        assert_eq!(replay[0].window, window);
        assert_eq!(replay[0].table, Table::Logs);
        drop(wal);
        let (wal, replay) = Wal::open(dir.path(), options(64 << 20), 4).unwrap();
        assert_eq!(replay.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![5]);
        assert_eq!(append_n(&wal, 1).await, vec![6]);
        drop(wal);
        // A log emptied entirely still numbers after what was persisted.
        let empty = tempfile::tempdir().unwrap();
        let (wal, replay) = Wal::open(empty.path(), options(64 << 20), 41).unwrap();
        assert!(replay.is_empty());
        assert_eq!(append_n(&wal, 1).await, vec![42]);
    }

    #[tokio::test]
    async fn numbering_that_jumps_ahead_starts_a_new_segment() {
        // Records 1-3 in the log, but everything up to 10 is persisted (the
        // log was disabled for a while).
        let dir = tempfile::tempdir().unwrap();
        let (wal, _) = Wal::open(dir.path(), options(64 << 20), 0).unwrap();
        append_n(&wal, 3).await;
        drop(wal);
        let (wal, replay) = Wal::open(dir.path(), options(64 << 20), 10).unwrap();
        assert!(replay.is_empty());
        assert_eq!(append_n(&wal, 2).await, vec![11, 12]);
        drop(wal);
        let names: Vec<String> = segments(dir.path())
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            vec!["00000000000000000011.wal"],
            "the old segment is gone"
        );
        let (_, replay) = Wal::open(dir.path(), options(64 << 20), 10).unwrap();
        assert_eq!(
            replay.iter().map(|r| r.seq).collect::<Vec<_>>(),
            vec![11, 12]
        );
    }

    #[tokio::test]
    async fn records_keep_their_tenant_and_a_log_from_before_tenants_is_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let acme = Tenant::parse("acme").unwrap();
        let (wal, _) = Wal::open(dir.path(), options(64 << 20), 0).unwrap();
        wal.append(
            &acme,
            Table::Logs,
            TimeWindow::ANY,
            Bytes::from_static(b"a"),
        )
        .await
        .unwrap();
        drop(wal);
        let (_, replay) = Wal::open(dir.path(), options(64 << 20), 0).unwrap();
        assert_eq!(replay[0].tenant, acme);
        assert_eq!(replay[0].payload, Bytes::from_static(b"a"));

        // A format-2 segment, written by hand: no tenant byte.
        let old = tempfile::tempdir().unwrap();
        let mut record = Vec::new();
        record.extend_from_slice(&1u32.to_le_bytes());
        record.extend_from_slice(&[0; 4]);
        record.extend_from_slice(&7u64.to_le_bytes());
        record.push(table_code(Table::Spans));
        record.extend_from_slice(&i64::MIN.to_le_bytes());
        record.extend_from_slice(&i64::MAX.to_le_bytes());
        record.push(b'x');
        let crc = crc32(&record[8..]);
        record[4..8].copy_from_slice(&crc.to_le_bytes());
        let mut segment = MAGIC_V2.to_vec();
        segment.extend(record);
        std::fs::write(old.path().join("00000000000000000007.wal"), segment).unwrap();
        let (_, replay) = Wal::open(old.path(), options(64 << 20), 0).unwrap();
        assert_eq!(replay.len(), 1);
        assert_eq!(replay[0].seq, 7);
        assert!(replay[0].tenant.is_default());
        assert_eq!(replay[0].payload, Bytes::from_static(b"x"));
    }
}

//! The alerting database (SQLite, `alerts.db` in the data directory): active
//! alerts and their history, the notification log, the outbox of
//! notifications with their delivery attempts, silences and the state of
//! scaling targets. Everything that must survive a restart.
//!
//! The database runs in WAL mode with `synchronous = NORMAL`: a committed
//! notification survives the process being killed at any instant (it is in
//! the WAL file); only a power loss can take the last commits.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OptionalExtension as _, params};
use serde::Serialize;

use crate::alert::{Alert, Transition};
use crate::notification::Notification;
use crate::silence::Silence;
use smolder_common::Tenant;
use smolder_common::sync::lock;

/// Errors of the alerting database.
#[derive(Debug, thiserror::Error)]
#[error("alerting database: {0}")]
pub struct StoreError(String);

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        Self(e.to_string())
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        Self(e.to_string())
    }
}

type Result<T> = std::result::Result<T, StoreError>;

/// What the notification log remembers of a group at one receiver.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NflogEntry {
    /// Fingerprints of the alerts last notified as firing.
    pub firing: Vec<String>,
    /// When that notification was created (Unix ns).
    pub sent_at: i64,
    /// Thread id of the group's current incident.
    pub thread: Option<String>,
}

/// Delivery state of a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Waiting for its (next) attempt.
    Pending,
    /// The receiver accepted it.
    Delivered,
    /// The receiver refused it (a 4xx other than 429); not retried.
    Failed,
    /// Retries ran out (`max_retry_age`).
    Dead,
}

impl DeliveryState {
    fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            "dead" => Self::Dead,
            _ => Self::Pending,
        }
    }
}

/// A scaling request in the outbox: a decision of a scaling target, its
/// figures and how its delivery went.
#[derive(Debug, Clone)]
pub struct ScalingDecision {
    /// The notification's id.
    pub id: String,
    /// When it was decided (Unix ns).
    pub created_at: i64,
    /// The request as sent.
    pub request: crate::notification::ScalingRequest,
    /// Delivery state.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// Delivered (Unix ns).
    pub delivered_at: Option<i64>,
    /// The error of the last failed attempt.
    pub last_error: Option<String>,
}

/// One row of the outbox.
#[derive(Debug, Clone, Serialize)]
pub struct Delivery {
    /// Order of creation.
    pub seq: i64,
    /// The notification's id.
    pub id: String,
    /// The receiver.
    pub receiver: String,
    /// The alert group.
    pub group_key: String,
    /// `firing`, `resolved`, `scale_up`, `scale_down`.
    pub status: String,
    /// Delivery state.
    pub state: DeliveryState,
    /// Attempts made.
    pub attempts: u32,
    /// Created (Unix ns).
    pub created_at: i64,
    /// Next attempt (Unix ns) while pending.
    pub next_attempt_at: i64,
    /// Last attempt (Unix ns).
    pub last_attempt_at: Option<i64>,
    /// Delivered (Unix ns).
    pub delivered_at: Option<i64>,
    /// HTTP status (or SMTP code) of the last attempt.
    pub last_status: Option<u16>,
    /// The error or the receiver's answer of the last failed attempt.
    pub last_error: Option<String>,
    /// SLOs of the alerts in it.
    pub slos: Vec<String>,
}

/// The result of one attempt, to record.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// Attempts made so far, this one included.
    pub attempts: u32,
    /// State after the attempt.
    pub state: DeliveryState,
    /// When the attempt ended.
    pub at: i64,
    /// Next attempt while pending.
    pub next_attempt_at: i64,
    /// Status code, when the receiver answered.
    pub status: Option<u16>,
    /// Error or answer, when it failed.
    pub error: Option<String>,
}

/// State of a scaling target for one SLO instance.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScalingState {
    /// Whether the target was asked to scale up and not yet back.
    pub scaled_up: bool,
    /// When it was asked to scale up (Unix ns).
    pub since: i64,
    /// Since when the burn rate is under `scale_down_below` (Unix ns).
    pub low_since: Option<i64>,
    /// The burn rate last seen.
    pub burn_rate: f64,
}

/// The alerting database.
#[derive(Debug)]
pub struct Store {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alerts (
    fingerprint TEXT PRIMARY KEY,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alert_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    slo TEXT NOT NULL,
    state_from TEXT NOT NULL,
    state_to TEXT NOT NULL,
    labels TEXT NOT NULL,
    summary TEXT NOT NULL,
    tenant TEXT NOT NULL DEFAULT 'default'
);
CREATE INDEX IF NOT EXISTS alert_history_slo ON alert_history (slo, id);
CREATE TABLE IF NOT EXISTS nflog (
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    firing TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    thread TEXT,
    PRIMARY KEY (receiver, group_key)
);
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    receiver TEXT NOT NULL,
    group_key TEXT NOT NULL,
    status TEXT NOT NULL,
    payload TEXT NOT NULL,
    slos TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    next_attempt_at INTEGER NOT NULL,
    last_attempt_at INTEGER,
    delivered_at INTEGER,
    last_status INTEGER,
    last_error TEXT,
    tenant TEXT NOT NULL DEFAULT 'default'
);
CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (state, seq);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    ends_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS scaling (
    target TEXT NOT NULL,
    instance TEXT NOT NULL,
    scaled_up INTEGER NOT NULL,
    since INTEGER NOT NULL,
    low_since INTEGER,
    burn_rate REAL NOT NULL,
    PRIMARY KEY (target, instance)
);
CREATE TABLE IF NOT EXISTS report_runs (
    name TEXT NOT NULL,
    period_start INTEGER NOT NULL,
    sent_at INTEGER NOT NULL,
    PRIMARY KEY (name, period_start)
);
CREATE TABLE IF NOT EXISTS secrets (
    name TEXT PRIMARY KEY,
    value BLOB NOT NULL
);
";

impl Store {
    /// Opens (or creates) the database file.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        Self::init(conn)
    }

    /// An in-memory database, for tests.
    pub fn in_memory() -> Result<Self> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self> {
        conn.execute_batch(SCHEMA)?;
        // Databases made before tenants existed: their rows are the default
        // tenant's.
        for table in ["alert_history", "outbox"] {
            let has_tenant: bool = conn.query_row(
                "SELECT COUNT(*) > 0 FROM pragma_table_info(?1) WHERE name = 'tenant'",
                params![table],
                |r| r.get(0),
            )?;
            if !has_tenant {
                conn.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN tenant TEXT NOT NULL DEFAULT 'default'"
                ))?;
            }
        }
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        lock(&self.conn)
    }

    /// The secret `name`: 32 random bytes made the first time it is asked
    /// for and kept in the database (so it moves with it).
    pub fn secret(&self, name: &str) -> Result<Vec<u8>> {
        let fresh: [u8; 32] = rand::random();
        let conn = self.conn();
        conn.execute(
            "INSERT OR IGNORE INTO secrets (name, value) VALUES (?1, ?2)",
            params![name, fresh.as_slice()],
        )?;
        Ok(conn.query_row(
            "SELECT value FROM secrets WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )?)
    }

    /// Alerts saved by [`Store::save_alerts`] and not deleted.
    pub fn alerts(&self) -> Result<Vec<Alert>> {
        let conn = self.conn();
        let mut stmt = conn.prepare("SELECT body FROM alerts")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in rows {
            out.push(serde_json::from_str(&body?)?);
        }
        Ok(out)
    }

    /// Saves changed alerts, deletes others, appends transitions to the
    /// history; one transaction.
    pub fn save_alerts(
        &self,
        changed: &[Alert],
        deleted: &[String],
        transitions: &[Transition],
    ) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO alerts (fingerprint, body) VALUES (?1, ?2)",
            )?;
            for a in changed {
                put.execute(params![a.fingerprint, serde_json::to_string(a)?])?;
            }
            let mut del = tx.prepare_cached("DELETE FROM alerts WHERE fingerprint = ?1")?;
            for fp in deleted {
                del.execute(params![fp])?;
            }
            let mut hist = tx.prepare_cached(
                "INSERT INTO alert_history (at, fingerprint, slo, state_from, state_to, labels, summary, tenant)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for t in transitions {
                hist.execute(params![
                    t.at,
                    t.fingerprint,
                    t.slo,
                    t.from,
                    t.to,
                    serde_json::to_string(&t.labels)?,
                    t.summary,
                    crate::alert::tenant_of(&t.labels).as_str()
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// When alerts started firing since `since` (Unix ns), oldest first: the
    /// lifecycle's memory of firings, for flapping, across a restart.
    pub fn firings_since(&self, since: i64) -> Result<Vec<(String, i64)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT fingerprint, at FROM alert_history WHERE state_to = 'firing' AND at >= ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![since], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// Whether the report `name` of the period starting at `start` was
    /// queued.
    pub fn report_sent(&self, name: &str, start: i64) -> Result<bool> {
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM report_runs WHERE name = ?1 AND period_start = ?2",
                params![name, start],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Records that the report `name` of the period starting at `start` was
    /// queued at `now`.
    pub fn mark_report_sent(&self, name: &str, start: i64, now: i64) -> Result<()> {
        self.conn().execute(
            "INSERT OR IGNORE INTO report_runs (name, period_start, sent_at) VALUES (?1, ?2, ?3)",
            params![name, start, now],
        )?;
        Ok(())
    }

    /// The transitions of `tenant`'s SLO `slo` since `since` (Unix ns),
    /// oldest first.
    pub fn transitions_since(
        &self,
        tenant: &Tenant,
        slo: &str,
        since: i64,
    ) -> Result<Vec<Transition>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT at, fingerprint, slo, state_from, state_to, labels, summary FROM alert_history
             WHERE slo = ?1 AND tenant = ?2 AND at >= ?3 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![slo, tenant.as_str(), since], |r| {
            Ok(Transition {
                at: r.get(0)?,
                fingerprint: r.get(1)?,
                slo: r.get(2)?,
                from: r.get(3)?,
                to: r.get(4)?,
                labels: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
                summary: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<std::result::Result<_, _>>()?)
    }

    /// `tenant`'s latest transitions, newest first.
    pub fn history(
        &self,
        tenant: &Tenant,
        slo: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Transition>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(
            "SELECT at, fingerprint, slo, state_from, state_to, labels, summary FROM alert_history
             WHERE (?1 IS NULL OR slo = ?1) AND tenant = ?3 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![slo, limit as i64, tenant.as_str()], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, String>(5)?,
                r.get::<_, String>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (at, fingerprint, slo, from, to, labels, summary) = row?;
            out.push(Transition {
                at,
                fingerprint,
                slo,
                from,
                to,
                labels: serde_json::from_str(&labels)?,
                summary,
            });
        }
        Ok(out)
    }

    /// What was last notified for a group at a receiver.
    pub fn nflog(&self, receiver: &str, group_key: &str) -> Result<Option<NflogEntry>> {
        let conn = self.conn();
        let row = conn
            .query_row(
                "SELECT firing, sent_at, thread FROM nflog WHERE receiver = ?1 AND group_key = ?2",
                params![receiver, group_key],
                |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Option<String>>(2)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(firing, sent_at, thread)| {
            Ok(NflogEntry {
                firing: serde_json::from_str(&firing)?,
                sent_at,
                thread,
            })
        })
        .transpose()
    }

    /// Writes notifications to the outbox and updates the notification log,
    /// in one transaction; returns each notification's sequence number.
    pub fn enqueue(&self, items: &[(Notification, Option<NflogEntry>)]) -> Result<Vec<i64>> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let mut seqs = Vec::with_capacity(items.len());
        {
            let mut ins = tx.prepare_cached(
                "INSERT INTO outbox (id, receiver, group_key, status, payload, slos, state, created_at, next_attempt_at, tenant)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'pending', ?7, ?7, ?8)",
            )?;
            let mut log = tx.prepare_cached(
                "INSERT OR REPLACE INTO nflog (receiver, group_key, firing, sent_at, thread) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for (n, entry) in items {
                let mut slos: Vec<&str> = n.alerts.iter().map(|a| a.slo.as_str()).collect();
                if let Some(s) = &n.scaling {
                    slos.push(&s.slo);
                }
                slos.sort_unstable();
                slos.dedup();
                let status = n
                    .scaling
                    .as_ref()
                    .map_or(n.status.as_str(), |s| s.action.as_str());
                ins.execute(params![
                    n.id,
                    n.receiver,
                    n.group_key,
                    status,
                    serde_json::to_string(n)?,
                    serde_json::to_string(&slos)?,
                    n.created_at,
                    n.tenant.as_str()
                ])?;
                seqs.push(tx.last_insert_rowid());
                if let Some(e) = entry {
                    log.execute(params![
                        n.receiver,
                        n.group_key,
                        serde_json::to_string(&e.firing)?,
                        e.sent_at,
                        e.thread
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(seqs)
    }

    /// Pending notifications in order: (seq, notification, attempts).
    pub fn pending(&self) -> Result<Vec<(i64, Notification, u32, i64)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT seq, payload, attempts, next_attempt_at FROM outbox WHERE state = 'pending' ORDER BY seq",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, u32>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, payload, attempts, next) = row?;
            out.push((seq, serde_json::from_str(&payload)?, attempts, next));
        }
        Ok(out)
    }

    /// Records an attempt's result.
    pub fn record(&self, seq: i64, rec: &AttemptRecord) -> Result<()> {
        let conn = self.conn();
        let delivered = (rec.state == DeliveryState::Delivered).then_some(rec.at);
        conn.prepare_cached(
            "UPDATE outbox SET attempts = ?2, state = ?3, last_attempt_at = ?4, next_attempt_at = ?5,
             last_status = ?6, last_error = ?7, delivered_at = COALESCE(?8, delivered_at) WHERE seq = ?1",
        )?
        .execute(params![
            seq,
            rec.attempts,
            rec.state.name(),
            rec.at,
            rec.next_attempt_at,
            rec.status,
            rec.error,
            delivered
        ])?;
        Ok(())
    }

    /// `tenant`'s deliveries, newest first, optionally of one receiver,
    /// state or SLO.
    pub fn deliveries(
        &self,
        tenant: &Tenant,
        receiver: Option<&str>,
        state: Option<&str>,
        slo: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Delivery>> {
        let conn = self.conn();
        let slo_pattern =
            slo.map(|s| format!("%{}%", serde_json::to_string(s).unwrap_or_default()));
        let mut stmt = conn.prepare_cached(
            "SELECT seq, id, receiver, group_key, status, state, attempts, created_at, next_attempt_at,
                    last_attempt_at, delivered_at, last_status, last_error, slos
             FROM outbox
             WHERE (?1 IS NULL OR receiver = ?1) AND (?2 IS NULL OR state = ?2) AND (?3 IS NULL OR slos LIKE ?3)
               AND tenant = ?5
             ORDER BY seq DESC LIMIT ?4",
        )?;
        let rows = stmt.query_map(
            params![receiver, state, slo_pattern, limit as i64, tenant.as_str()],
            |r| {
                Ok((
                    Delivery {
                        seq: r.get(0)?,
                        id: r.get(1)?,
                        receiver: r.get(2)?,
                        group_key: r.get(3)?,
                        status: r.get(4)?,
                        state: DeliveryState::parse(&r.get::<_, String>(5)?),
                        attempts: r.get(6)?,
                        created_at: r.get(7)?,
                        next_attempt_at: r.get(8)?,
                        last_attempt_at: r.get(9)?,
                        delivered_at: r.get(10)?,
                        last_status: r.get(11)?,
                        last_error: r.get(12)?,
                        slos: Vec::new(),
                    },
                    r.get::<_, String>(13)?,
                ))
            },
        )?;
        let mut out = Vec::new();
        for row in rows {
            let (mut d, slos) = row?;
            d.slos = serde_json::from_str(&slos)?;
            out.push(d);
        }
        Ok(out)
    }

    /// `tenant`'s scaling decisions for `slo`, newest first: the scaling
    /// history (kept as long as the outbox keeps notifications).
    pub fn scaling_history(
        &self,
        tenant: &Tenant,
        slo: &str,
        limit: usize,
    ) -> Result<Vec<ScalingDecision>> {
        let conn = self.conn();
        let slo_pattern = format!("%{}%", serde_json::to_string(slo)?);
        let mut stmt = conn.prepare_cached(
            "SELECT id, created_at, payload, state, attempts, delivered_at, last_error
             FROM outbox
             WHERE receiver LIKE 'scaling/%' AND slos LIKE ?1 AND tenant = ?2
             ORDER BY seq DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![slo_pattern, tenant.as_str(), limit as i64], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, Option<String>>(6)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, created_at, payload, state, attempts, delivered_at, last_error) = row?;
            let n: Notification = serde_json::from_str(&payload)?;
            let Some(request) = n.scaling.filter(|s| s.slo == slo) else {
                continue;
            };
            out.push(ScalingDecision {
                id,
                created_at,
                request,
                state: DeliveryState::parse(&state),
                attempts,
                delivered_at,
                last_error,
            });
        }
        Ok(out)
    }

    /// Notifications of every tenant by delivery state (`pending`,
    /// `delivered`, `failed`, `dead`), and when the oldest pending one was
    /// created (Unix ns).
    pub fn delivery_counts(&self) -> Result<(BTreeMap<String, u64>, Option<i64>)> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
        let counts = stmt
            .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
            .map(|row| row.map(|(s, n)| (s, u64::try_from(n).unwrap_or(0))))
            .collect::<std::result::Result<BTreeMap<_, _>, _>>()?;
        let oldest: Option<i64> = conn
            .prepare_cached("SELECT min(created_at) FROM outbox WHERE state = 'pending'")?
            .query_row([], |r| r.get(0))?;
        Ok((counts, oldest))
    }

    /// `tenant`'s notification `id`, as queued (its receiver and content).
    pub fn notification(&self, tenant: &Tenant, id: &str) -> Result<Option<Notification>> {
        let conn = self.conn();
        let mut stmt =
            conn.prepare_cached("SELECT payload FROM outbox WHERE id = ?1 AND tenant = ?2")?;
        let mut rows = stmt.query(params![id, tenant.as_str()])?;
        match rows.next()? {
            Some(row) => Ok(Some(serde_json::from_str(&row.get::<_, String>(0)?)?)),
            None => Ok(None),
        }
    }

    /// Deletes delivered, failed and dead notifications created before
    /// `before` (Unix ns), and history older than that.
    pub fn prune(&self, deliveries_before: i64, history_before: i64) -> Result<usize> {
        let conn = self.conn();
        let n = conn.execute(
            "DELETE FROM outbox WHERE state <> 'pending' AND created_at < ?1",
            params![deliveries_before],
        )?;
        conn.execute(
            "DELETE FROM alert_history WHERE at < ?1",
            params![history_before],
        )?;
        Ok(n)
    }

    /// Every silence (expired ones too, until pruned).
    pub fn silences(&self) -> Result<Vec<Silence>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached("SELECT body FROM silences ORDER BY ends_at DESC")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for body in rows {
            out.push(serde_json::from_str(&body?)?);
        }
        Ok(out)
    }

    /// Creates or replaces a silence.
    pub fn put_silence(&self, s: &Silence) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO silences (id, body, ends_at) VALUES (?1, ?2, ?3)",
            params![
                s.id,
                serde_json::to_string(s)?,
                s.ends_at.timestamp_nanos_opt().unwrap_or(i64::MAX)
            ],
        )?;
        Ok(())
    }

    /// Every scaling target's state per SLO instance: (target, instance,
    /// state).
    pub fn scalings(&self) -> Result<Vec<(String, String, ScalingState)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT target, instance, scaled_up, since, low_since, burn_rate FROM scaling",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                ScalingState {
                    scaled_up: r.get::<_, i64>(2)? != 0,
                    since: r.get(3)?,
                    low_since: r.get(4)?,
                    burn_rate: r.get(5)?,
                },
            ))
        })?;
        Ok(rows.collect::<std::result::Result<Vec<_>, _>>()?)
    }

    /// Saves a scaling target's state for one SLO instance.
    pub fn put_scaling(&self, target: &str, instance: &str, s: &ScalingState) -> Result<()> {
        self.conn().execute(
            "INSERT OR REPLACE INTO scaling (target, instance, scaled_up, since, low_since, burn_rate)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![target, instance, i64::from(s.scaled_up), s.since, s.low_since, s.burn_rate],
        )?;
        Ok(())
    }
}

//! API tokens: who may send telemetry, read, change and administer.
//!
//! A token is `smd_<id>_<secret>`: the id (12 hex digits) finds the token's
//! row, the secret (32 random bytes, base64url) proves it. Only the SHA-256
//! of the secret is stored (the secret is random, so a fast hash is enough),
//! the token is shown once when it is made and never logged, and the
//! presented secret's hash is compared in constant time.
//!
//! Tokens live in SQLite (`auth.db` in the data directory), so `smolder token
//! create --data-dir …` works beside a running server: the server re-reads
//! the table every second ([`TokenStore::refresh`]) and answers requests from
//! memory.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use base64::Engine as _;
use rusqlite::{Connection, OptionalExtension as _, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use smolder_common::Tenant;
use smolder_common::sync::{lock, read, write};

/// What a token may do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Scope {
    /// Send telemetry (OTLP over gRPC and HTTP).
    Ingest,
    /// Read: SQL, searches, SLOs, alerts, metrics.
    Read,
    /// Change: SLOs, silences, configuration reload.
    Write,
    /// Manage tokens; implies every other scope.
    Admin,
}

impl Scope {
    const ALL: [Scope; 4] = [Scope::Ingest, Scope::Read, Scope::Write, Scope::Admin];

    fn name(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Read => "read",
            Self::Write => "write",
            Self::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.name() == s.trim())
            .ok_or_else(|| format!("{s:?} is not a scope (ingest, read, write, admin)"))
    }
}

/// Scopes from `ingest,read`.
pub(crate) fn parse_scopes(text: &str) -> Result<BTreeSet<Scope>, String> {
    let scopes: BTreeSet<Scope> = text
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    if scopes.is_empty() {
        return Err("give at least one scope (ingest, read, write, admin)".into());
    }
    Ok(scopes)
}

fn scopes_text(scopes: &BTreeSet<Scope>) -> String {
    scopes
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// A token as listed: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct TokenInfo {
    /// The token's id (the part after `smd_`).
    pub(crate) id: String,
    /// The tenant whose data it reaches.
    pub(crate) tenant: Tenant,
    /// What it may do.
    pub(crate) scopes: BTreeSet<Scope>,
    /// When it was made (Unix ns).
    pub(crate) created_at: i64,
    /// When it stops working (Unix ns), if ever.
    pub(crate) expires_at: Option<i64>,
    /// When it was revoked (Unix ns).
    pub(crate) revoked_at: Option<i64>,
}

impl TokenInfo {
    /// Whether it may do what `scope` allows.
    pub(crate) fn allows(&self, scope: Scope) -> bool {
        self.scopes.contains(&Scope::Admin) || self.scopes.contains(&scope)
    }

    /// `active`, `expired` or `revoked` at `now`.
    pub(crate) fn state(&self, now: i64) -> &'static str {
        if self.revoked_at.is_some() {
            "revoked"
        } else if self.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else {
            "active"
        }
    }
}

/// Why a presented token is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejected {
    /// No token was sent.
    Missing,
    /// Not a token of this server (unknown id, wrong secret, malformed).
    Invalid,
    /// It was, until it expired.
    Expired,
    /// It was, until it was revoked.
    Revoked,
}

impl Rejected {
    /// For the client: says what is wrong without helping a guesser.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Missing => "this server needs a token: send Authorization: Bearer <token>",
            Self::Invalid => "the token is not valid",
            Self::Expired => "the token has expired",
            Self::Revoked => "the token was revoked",
        }
    }
}

/// The table and an in-memory copy of it.
/// A token as processes sharing a bucket exchange it: the stored row, with
/// the secret's SHA-256 in hex (the secret itself exists nowhere).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TokenRow {
    pub(crate) id: String,
    pub(crate) hash: String,
    pub(crate) tenant: String,
    pub(crate) scopes: String,
    pub(crate) created_at: i64,
    pub(crate) expires_at: Option<i64>,
    pub(crate) revoked_at: Option<i64>,
}

pub(crate) struct TokenStore {
    conn: Mutex<Connection>,
    cache: RwLock<Arc<ById>>,
}

/// By id: the secret's hash and the token.
type ById = HashMap<String, ([u8; 32], TokenInfo)>;

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore").finish_non_exhaustive()
    }
}

const PREFIX: &str = "smd_";

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

impl TokenStore {
    /// Opens (creating) `auth.db` in `data_dir`.
    pub(crate) fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let conn = crate::audit::open_db(
            data_dir,
            "auth.db",
            "CREATE TABLE IF NOT EXISTS tokens (
                id TEXT PRIMARY KEY,
                hash BLOB NOT NULL,
                tenant TEXT NOT NULL,
                scopes TEXT NOT NULL,
                created_at INTEGER NOT NULL,
                expires_at INTEGER,
                revoked_at INTEGER
            )",
        )?;
        let store = Self {
            conn: Mutex::new(conn),
            cache: RwLock::new(Arc::new(HashMap::new())),
        };
        store.refresh()?;
        Ok(store)
    }

    /// Re-reads the table (tokens made or revoked by `smolder token` beside
    /// the server).
    pub(crate) fn refresh(&self) -> anyhow::Result<()> {
        let rows = {
            let conn = lock(&self.conn);
            let mut stmt = conn.prepare(
                "SELECT id, hash, tenant, scopes, created_at, expires_at, revoked_at FROM tokens",
            )?;
            stmt.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Option<i64>>(5)?,
                    r.get::<_, Option<i64>>(6)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?
        };
        let mut cache = HashMap::with_capacity(rows.len());
        for (id, digest, tenant, scopes, created_at, expires_at, revoked_at) in rows {
            let (Ok(digest), Ok(scopes), Ok(tenant)) = (
                <[u8; 32]>::try_from(digest),
                parse_scopes(&scopes),
                Tenant::parse(&tenant),
            ) else {
                tracing::warn!(token = %id, "Ignoring an unreadable token row.");
                continue;
            };
            let info = TokenInfo {
                id: id.clone(),
                tenant,
                scopes,
                created_at,
                expires_at,
                revoked_at,
            };
            cache.insert(id, (digest, info));
        }
        *write(&self.cache) = Arc::new(cache);
        Ok(())
    }

    /// Makes a token; returns it with the whole token text (shown once).
    pub(crate) fn create(
        &self,
        tenant: &Tenant,
        scopes: &BTreeSet<Scope>,
        expires_in: Option<Duration>,
        now: i64,
    ) -> anyhow::Result<(TokenInfo, String)> {
        anyhow::ensure!(!scopes.is_empty(), "a token needs at least one scope");
        let id = hex::encode(rand::random::<[u8; 6]>());
        let secret =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        let expires_at =
            expires_in.map(|d| now.saturating_add(i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)));
        lock(&self.conn).execute(
            "INSERT INTO tokens (id, hash, tenant, scopes, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, hash(&secret).to_vec(), tenant.as_str(), scopes_text(scopes), now, expires_at],
        )?;
        self.refresh()?;
        let info = TokenInfo {
            id: id.clone(),
            tenant: tenant.clone(),
            scopes: scopes.clone(),
            created_at: now,
            expires_at,
            revoked_at: None,
        };
        Ok((info, format!("{PREFIX}{id}_{secret}")))
    }

    /// Every token, newest first.
    pub(crate) fn list(&self) -> Vec<TokenInfo> {
        let mut all: Vec<TokenInfo> = read(&self.cache).values().map(|(_, t)| t.clone()).collect();
        all.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        all
    }

    /// Revokes a token; `false` when there is no such (active) token.
    pub(crate) fn revoke(&self, id: &str, now: i64) -> anyhow::Result<bool> {
        let changed = lock(&self.conn).execute(
            "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
            params![id, now],
        )?;
        self.refresh()?;
        Ok(changed > 0)
    }

    /// The token a client presented, if it is one.
    pub(crate) fn verify(&self, presented: &str, now: i64) -> Result<TokenInfo, Rejected> {
        let (id, secret) = presented
            .strip_prefix(PREFIX)
            .and_then(|rest| rest.split_once('_'))
            .ok_or(Rejected::Invalid)?;
        let cache = Arc::clone(&read(&self.cache));
        // An unknown id still costs a hash and a comparison, so a guesser
        // learns nothing from the time.
        let found = cache.get(id);
        let expected = found.map_or([0u8; 32], |(digest, _)| *digest);
        let matches = constant_time_eq::constant_time_eq_32(&hash(secret), &expected);
        let Some((_, info)) = found.filter(|_| matches) else {
            return Err(Rejected::Invalid);
        };
        match info.state(now) {
            "revoked" => Err(Rejected::Revoked),
            "expired" => Err(Rejected::Expired),
            _ => Ok(info.clone()),
        }
    }

    /// Whether a token with this id exists (for the API's 404).
    /// Every token's row (the secret's hash, never the secret), by id.
    pub(crate) fn rows(&self) -> anyhow::Result<Vec<TokenRow>> {
        let conn = lock(&self.conn);
        let mut stmt = conn.prepare(
            "SELECT id, hash, tenant, scopes, created_at, expires_at, revoked_at FROM tokens ORDER BY id",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(TokenRow {
                    id: r.get(0)?,
                    hash: hex::encode(r.get::<_, Vec<u8>>(1)?),
                    tenant: r.get(2)?,
                    scopes: r.get(3)?,
                    created_at: r.get(4)?,
                    expires_at: r.get(5)?,
                    revoked_at: r.get(6)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Takes in the tokens of `rows` this store lacks and their
    /// revocations (a revoked token stays revoked); rows that do not read
    /// as tokens are skipped. Returns whether anything changed.
    pub(crate) fn merge(&self, rows: &[TokenRow]) -> anyhow::Result<bool> {
        let mut changed = 0;
        {
            let mut conn = lock(&self.conn);
            let tx = conn.transaction()?;
            for row in rows {
                let hash = match hex::decode(&row.hash) {
                    Ok(hash) if hash.len() == 32 => hash,
                    _ => {
                        tracing::warn!(token = %row.id, "Ignoring a shared token without a SHA-256 hash.");
                        continue;
                    }
                };
                if Tenant::parse(&row.tenant).is_err() || parse_scopes(&row.scopes).is_err() {
                    tracing::warn!(token = %row.id, "Ignoring a shared token with an unreadable tenant or scopes.");
                    continue;
                }
                changed += tx.execute(
                    "INSERT OR IGNORE INTO tokens (id, hash, tenant, scopes, created_at, expires_at, revoked_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    params![row.id, hash, row.tenant, row.scopes, row.created_at, row.expires_at, row.revoked_at],
                )?;
                if let Some(at) = row.revoked_at {
                    changed += tx.execute(
                        "UPDATE tokens SET revoked_at = ?2 WHERE id = ?1 AND revoked_at IS NULL",
                        params![row.id, at],
                    )?;
                }
            }
            tx.commit()?;
        }
        if changed > 0 {
            self.refresh()?;
        }
        Ok(changed > 0)
    }

    pub(crate) fn exists(&self, id: &str) -> anyhow::Result<bool> {
        Ok(lock(&self.conn)
            .query_row("SELECT 1 FROM tokens WHERE id = ?1", [id], |_| Ok(()))
            .optional()?
            .is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000_000_000_000;

    #[test]
    fn a_token_is_accepted_until_it_expires_or_is_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        let scopes = parse_scopes("ingest,read").unwrap();
        let (info, token) = store
            .create(
                &Tenant::parse("team-a").unwrap(),
                &scopes,
                Some(Duration::from_secs(60)),
                NOW,
            )
            .unwrap();
        assert!(token.starts_with("smd_") && token.len() > 50, "{token}");
        let seen = store.verify(&token, NOW + 1).unwrap();
        assert_eq!(seen, info);
        assert!(seen.allows(Scope::Ingest) && seen.allows(Scope::Read));
        assert!(!seen.allows(Scope::Write) && !seen.allows(Scope::Admin));
        assert_eq!(
            store.verify(&token, NOW + 61_000_000_000),
            Err(Rejected::Expired)
        );
        // Another secret of the same id, a malformed one, an unknown id.
        assert_eq!(
            store.verify(&format!("smd_{}_AAAA", info.id), NOW),
            Err(Rejected::Invalid)
        );
        assert_eq!(store.verify("Bearer x", NOW), Err(Rejected::Invalid));
        assert_eq!(
            store.verify("smd_000000000000_x", NOW),
            Err(Rejected::Invalid)
        );
        assert!(store.revoke(&info.id, NOW + 2).unwrap());
        assert_eq!(store.verify(&token, NOW + 3), Err(Rejected::Revoked));
        assert!(!store.revoke(&info.id, NOW + 4).unwrap(), "already revoked");
    }

    #[test]
    fn only_the_hash_is_stored_and_another_process_sees_new_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let server = TokenStore::open(dir.path()).unwrap();
        let cli = TokenStore::open(dir.path()).unwrap();
        let (_, token) = cli
            .create(
                &Tenant::default(),
                &parse_scopes("admin").unwrap(),
                None,
                NOW,
            )
            .unwrap();
        assert_eq!(server.verify(&token, NOW), Err(Rejected::Invalid));
        server.refresh().unwrap();
        assert!(server.verify(&token, NOW).unwrap().allows(Scope::Write));
        let secret = token
            .strip_prefix("smd_")
            .and_then(|t| t.split_once('_'))
            .unwrap()
            .1;
        let db = std::fs::read(dir.path().join("auth.db")).unwrap();
        let wal = std::fs::read(dir.path().join("auth.db-wal")).unwrap_or_default();
        for bytes in [db, wal] {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
        }
    }

    #[test]
    fn scopes_and_tenants_are_checked() {
        assert!(parse_scopes("ingest,bogus").is_err());
        assert!(parse_scopes("").is_err());
        let dir = tempfile::tempdir().unwrap();
        let store = TokenStore::open(dir.path()).unwrap();
        let scopes = parse_scopes("read").unwrap();
        assert!(
            store
                .create(&Tenant::default(), &BTreeSet::new(), None, NOW)
                .is_err()
        );
        let (info, _) = store
            .create(&Tenant::default(), &scopes, None, NOW)
            .unwrap();
        assert!(info.tenant.is_default());
    }
}

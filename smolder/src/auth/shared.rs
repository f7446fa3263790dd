//! Tokens shared by every process on one bucket.
//!
//! Each process checks tokens against its own `auth.db` (answered from
//! memory, re-read every second). With several processes — ingesters behind a
//! load balancer, queriers, an evaluator — a token made on one of them (with
//! `smolder token create` beside it or through the API) must work on all,
//! and a revocation must reach all. The bucket is what they share, so the
//! tokens go through it: `auth/tokens.json` lists every token's row (the
//! secret's SHA-256, never the secret, as `auth.db` does).
//!
//! Every few seconds each process reads the list (a conditional GET that
//! costs nothing while it is unchanged), takes in the tokens it lacks and
//! the revocations, and, if it knows more than the list — a token made or
//! revoked here — puts the union back with a conditional put. Tokens are
//! only ever added and revoked, never changed otherwise, so merging is a
//! union in which a revocation wins: two processes that put at once cannot
//! lose each other's change, the loser of the race merges again at its next
//! round. A token made on one process works on the others within two rounds.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{
    GetOptions, ObjectStore, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use serde::{Deserialize, Serialize};
use smolder_common::sync::lock;

use super::tokens::{TokenRow, TokenStore};

/// The list in the bucket.
const OBJECT: &str = "auth/tokens.json";

#[derive(Debug, Default, Serialize, Deserialize)]
struct List {
    tokens: Vec<TokenRow>,
}

/// The list as last read: its version and rows.
#[derive(Debug, Default)]
struct Seen {
    version: Option<UpdateVersion>,
    rows: Vec<TokenRow>,
}

/// Keeps a process's tokens and the bucket's list in step.
pub(crate) struct SharedTokens {
    bucket: Arc<dyn ObjectStore>,
    store: Arc<TokenStore>,
    seen: Mutex<Seen>,
}

impl std::fmt::Debug for SharedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedTokens").finish_non_exhaustive()
    }
}

impl SharedTokens {
    pub(crate) fn new(bucket: Arc<dyn ObjectStore>, store: Arc<TokenStore>) -> Self {
        Self {
            bucket,
            store,
            seen: Mutex::new(Seen::default()),
        }
    }

    /// Reads the list again if it changed; answers whether it did.
    async fn read(&self) -> anyhow::Result<bool> {
        let location = ObjectPath::from(OBJECT);
        let options = GetOptions {
            if_none_match: lock(&self.seen)
                .version
                .as_ref()
                .and_then(|v| v.e_tag.clone()),
            ..GetOptions::default()
        };
        let got = match self.bucket.get_opts(&location, options).await {
            Ok(got) => got,
            Err(datafusion::object_store::Error::NotModified { .. }) => return Ok(false),
            Err(datafusion::object_store::Error::NotFound { .. }) => {
                *lock(&self.seen) = Seen::default();
                return Ok(true);
            }
            Err(e) => return Err(e).context("reading auth/tokens.json"),
        };
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got.bytes().await.context("reading auth/tokens.json")?;
        let list: List = serde_json::from_slice(&bytes).context("auth/tokens.json")?;
        *lock(&self.seen) = Seen {
            version: Some(version),
            rows: list.tokens,
        };
        Ok(true)
    }

    /// One round: takes in the bucket's tokens, then puts back what this
    /// process knows more. Returns whether the list was put.
    pub(crate) async fn sync(&self) -> anyhow::Result<bool> {
        let changed = self.read().await?;
        self.merge_and_put(changed).await
    }

    /// Takes in the list as last read (when it `changed`; an unchanged one
    /// is in already), and puts the union back if this process knows more
    /// (conditional on that version).
    async fn merge_and_put(&self, changed: bool) -> anyhow::Result<bool> {
        let remote = changed.then(|| lock(&self.seen).rows.clone());
        let store = Arc::clone(&self.store);
        let local = tokio::task::spawn_blocking(move || {
            if let Some(remote) = remote {
                store.merge(&remote)?;
            }
            store.rows()
        })
        .await
        .context("the token task failed")??;
        let (version, remote) = {
            let seen = lock(&self.seen);
            (seen.version.clone(), seen.rows.clone())
        };
        if by_id(&local) == by_id(&remote) {
            return Ok(false);
        }
        let body = serde_json::to_vec_pretty(&List {
            tokens: local.clone(),
        })?;
        let mode = match version {
            Some(version) => PutMode::Update(version),
            None => PutMode::Create,
        };
        let put = self
            .bucket
            .put_opts(
                &ObjectPath::from(OBJECT),
                PutPayload::from(body),
                PutOptions::from(mode),
            )
            .await;
        match put {
            Ok(result) => {
                *lock(&self.seen) = Seen {
                    version: Some(UpdateVersion {
                        e_tag: result.e_tag,
                        version: result.version,
                    }),
                    rows: local,
                };
                Ok(true)
            }
            // Another process put first: merge its list at the next round.
            Err(
                datafusion::object_store::Error::Precondition { .. }
                | datafusion::object_store::Error::AlreadyExists { .. },
            ) => {
                lock(&self.seen).version = None;
                Ok(false)
            }
            Err(e) => Err(e).context("putting auth/tokens.json"),
        }
    }
}

fn by_id(rows: &[TokenRow]) -> BTreeMap<&str, &TokenRow> {
    rows.iter().map(|r| (r.id.as_str(), r)).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use datafusion::object_store::memory::InMemory;
    use smolder_common::Tenant;

    use super::*;
    use crate::auth::parse_scopes;

    const NOW: i64 = 1_700_000_000_000_000_000;

    fn process(
        bucket: &Arc<dyn ObjectStore>,
    ) -> (tempfile::TempDir, Arc<TokenStore>, SharedTokens) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(TokenStore::open(dir.path()).unwrap());
        let shared = SharedTokens::new(Arc::clone(bucket), Arc::clone(&store));
        (dir, store, shared)
    }

    fn scopes() -> BTreeSet<crate::auth::Scope> {
        parse_scopes("ingest,read").unwrap()
    }

    #[tokio::test]
    async fn tokens_made_on_two_processes_at_once_and_a_revocation_reach_both() {
        let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (_a_dir, a, a_sync) = process(&bucket);
        let (_b_dir, b, b_sync) = process(&bucket);
        let (made_on_a, token_a) = a.create(&Tenant::default(), &scopes(), None, NOW).unwrap();
        let (_, token_b) = b.create(&Tenant::default(), &scopes(), None, NOW).unwrap();
        assert!(b.verify(&token_a, NOW).is_err());

        // Both read the (missing) list, a puts first: b's put loses the
        // race and b merges a's list at its next round.
        b_sync.read().await.unwrap();
        assert!(a_sync.sync().await.unwrap());
        assert!(
            !b_sync.merge_and_put(true).await.unwrap(),
            "b lost the race"
        );
        assert!(b_sync.sync().await.unwrap(), "b puts the union");
        a_sync.sync().await.unwrap();
        for (store, name) in [(&a, "a"), (&b, "b")] {
            assert!(store.verify(&token_a, NOW).is_ok(), "a's token on {name}");
            assert!(store.verify(&token_b, NOW).is_ok(), "b's token on {name}");
        }

        assert!(b.revoke(&made_on_a.id, NOW + 1).unwrap());
        b_sync.sync().await.unwrap();
        a_sync.sync().await.unwrap();
        assert_eq!(
            a.verify(&token_a, NOW + 2),
            Err(crate::auth::Rejected::Revoked),
            "revoked on b, refused on a"
        );
        // Once in step, a round puts nothing.
        assert!(!a_sync.sync().await.unwrap());
        assert!(!b_sync.sync().await.unwrap());
    }

    #[tokio::test]
    async fn a_revocation_is_not_undone_by_a_process_that_has_not_seen_it() {
        let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (_a_dir, a, a_sync) = process(&bucket);
        let (_b_dir, b, b_sync) = process(&bucket);
        let (info, token) = a.create(&Tenant::default(), &scopes(), None, NOW).unwrap();
        a_sync.sync().await.unwrap();
        b_sync.sync().await.unwrap();
        a.revoke(&info.id, NOW + 1).unwrap();
        a_sync.sync().await.unwrap();
        // b still holds the token as active when it merges.
        b_sync.sync().await.unwrap();
        assert_eq!(
            b.verify(&token, NOW + 2),
            Err(crate::auth::Rejected::Revoked)
        );
        a_sync.sync().await.unwrap();
        assert_eq!(
            a.verify(&token, NOW + 2),
            Err(crate::auth::Rejected::Revoked)
        );
    }

    #[tokio::test]
    async fn rows_that_are_not_tokens_are_skipped() {
        let bucket: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let (_dir, store, _) = process(&bucket);
        let bad = TokenRow {
            id: "0123456789ab".into(),
            hash: "not hex".into(),
            tenant: "default".into(),
            scopes: "ingest".into(),
            created_at: NOW,
            expires_at: None,
            revoked_at: None,
        };
        let bad_scope = TokenRow {
            hash: "00".repeat(32),
            scopes: "root".into(),
            ..bad.clone()
        };
        assert!(!store.merge(&[bad, bad_scope]).unwrap());
        assert!(store.rows().unwrap().is_empty());
    }
}

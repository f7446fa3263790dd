//! A lease in the object store: which one of several processes does a job
//! only one may do at a time — compaction and retention, which every
//! process with the `compact` role is ready to do.
//!
//! The lease is one small JSON object (`leases/<name>.json`: the holder's
//! writer id and the time to live). Its holder renews it every third of the
//! time to live with a put conditional on the version it wrote last; another
//! process takes it over with a put conditional on the version it read, once
//! that version has stayed the same for a whole time to live *by its own
//! clock*. No clocks are compared between machines: an observer starts
//! counting when it first sees a version, which is after the holder wrote
//! it, and the holder counts its time from before it sent the put, so the
//! holder always stops considering itself the holder before anyone else can
//! take over. A holder that stops cleanly writes the lease released, and
//! the next process takes it at once.
//!
//! The lease keeps the work in one place; it is not what keeps the data
//! safe. Every change of the manifest is a conditional put applied to the
//! manifest it finds (store.rs), so even two compactors that both believed
//! they held the lease (a holder paused longer than the time to live) would
//! lose no file and no row — one's merge would be voided by the other's.
//!
//! On a local directory there is one process: the lease is always held.

use std::sync::Arc;
use std::time::Duration;

use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{
    ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use serde::{Deserialize, Serialize};
use smolder_common::sync::lock;
use tokio::time::Instant;

use crate::store::StoreError;

/// What the lease object holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    /// Writer id of the holder.
    holder: String,
    /// How long the holder may go without renewing, in milliseconds.
    ttl_ms: u64,
    /// The holder let it go (stopped cleanly).
    #[serde(default)]
    released: bool,
}

/// What this process knows of the lease.
#[derive(Debug, Default)]
struct State {
    /// The version this process wrote last, while it holds the lease.
    own: Option<UpdateVersion>,
    /// Until when this process holds it (counted from before its last put).
    held_until: Option<Instant>,
    /// Another holder's version, and when this process first saw it.
    seen: Option<(Option<String>, Instant)>,
}

/// One named lease; see the module documentation.
#[derive(Debug)]
pub struct Lease {
    store: Option<Arc<dyn ObjectStore>>,
    path: ObjectPath,
    holder: String,
    ttl: Duration,
    state: std::sync::Mutex<State>,
}

impl Lease {
    /// The lease `name` in `store`, sought by the writer `holder`; `None` for
    /// `store` means a local directory, where it is always held.
    pub fn new(
        store: Option<Arc<dyn ObjectStore>>,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Self {
        Self {
            store,
            path: ObjectPath::from(format!("leases/{name}.json")),
            holder: holder.to_string(),
            ttl,
            state: std::sync::Mutex::new(State::default()),
        }
    }

    /// How long the lease lasts without being renewed.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Whether this process holds the lease now.
    pub fn held(&self) -> bool {
        self.store.is_none()
            || lock(&self.state)
                .held_until
                .is_some_and(|t| Instant::now() < t)
    }

    /// Renews the lease if this process holds it, takes it if its holder
    /// let it expire or go; answers whether this process holds it now. Call
    /// it more often than a third of the time to live.
    pub async fn tick(&self) -> Result<bool, StoreError> {
        let Some(store) = &self.store else {
            return Ok(true);
        };
        let renew_every = self.ttl / 3;
        {
            let state = lock(&self.state);
            if let Some(until) = state.held_until
                && state.own.is_some()
                && Instant::now() + self.ttl - renew_every < until
            {
                return Ok(true);
            }
        }
        let (record, version) = match store.get(&self.path).await {
            Ok(found) => {
                let version = UpdateVersion {
                    e_tag: found.meta.e_tag.clone(),
                    version: found.meta.version.clone(),
                };
                let record: Option<Record> = serde_json::from_slice(&found.bytes().await?).ok();
                (record, Some(version))
            }
            Err(datafusion::object_store::Error::NotFound { .. }) => (None, None),
            Err(e) => return Err(e.into()),
        };
        let now = Instant::now();
        let free = match (&record, &version) {
            (None, _) => true,
            (Some(r), _) if r.holder == self.holder || r.released => true,
            (Some(r), Some(v)) => {
                let mut state = lock(&self.state);
                state.own = None;
                state.held_until = None;
                let ttl = Duration::from_millis(r.ttl_ms);
                match &state.seen {
                    Some((etag, since)) if *etag == v.e_tag => now.duration_since(*since) >= ttl,
                    _ => {
                        state.seen = Some((v.e_tag.clone(), now));
                        false
                    }
                }
            }
            (Some(_), None) => false,
        };
        if !free {
            return Ok(false);
        }
        let taking = record.as_ref().is_none_or(|r| r.holder != self.holder);
        let mode = match version {
            Some(v) => PutMode::Update(v),
            None => PutMode::Create,
        };
        let body = serde_json::to_vec(&Record {
            holder: self.holder.clone(),
            ttl_ms: u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX),
            released: false,
        })
        .expect("a lease record serializes");
        let sent = Instant::now();
        let put = store
            .put_opts(
                &self.path,
                PutPayload::from(body),
                PutOptions {
                    mode,
                    ..PutOptions::default()
                },
            )
            .await;
        let mut state = lock(&self.state);
        match put {
            Ok(put) => {
                state.own = Some(UpdateVersion {
                    e_tag: put.e_tag,
                    version: put.version,
                });
                state.held_until = Some(sent + self.ttl);
                state.seen = None;
                if taking {
                    tracing::info!(lease = %self.path, "Took the lease.");
                }
                Ok(true)
            }
            Err(
                datafusion::object_store::Error::Precondition { .. }
                | datafusion::object_store::Error::AlreadyExists { .. },
            ) => {
                // Someone else wrote it first.
                if state.held_until.take().is_some() {
                    tracing::warn!(lease = %self.path, "Lost the lease to another process.");
                }
                state.own = None;
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Lets the lease go (at a clean stop) so that another process takes it
    /// at once.
    pub async fn release(&self) {
        let Some(store) = &self.store else {
            return;
        };
        let own = {
            let mut state = lock(&self.state);
            state.held_until = None;
            state.own.take()
        };
        let Some(own) = own else {
            return;
        };
        let body = serde_json::to_vec(&Record {
            holder: self.holder.clone(),
            ttl_ms: u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX),
            released: true,
        })
        .expect("a lease record serializes");
        let put = store
            .put_opts(
                &self.path,
                PutPayload::from(body),
                PutOptions {
                    mode: PutMode::Update(own),
                    ..PutOptions::default()
                },
            )
            .await;
        match put {
            Ok(_) => tracing::info!(lease = %self.path, "Released the lease."),
            Err(e) => {
                tracing::debug!(lease = %self.path, error = %e, "Releasing the lease failed; it expires.")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::object_store::memory::InMemory;

    use super::*;

    const TTL: Duration = Duration::from_secs(15);

    fn two() -> (Lease, Lease) {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        (
            Lease::new(Some(Arc::clone(&store)), "compactor", "a", TTL),
            Lease::new(Some(store), "compactor", "b", TTL),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn one_process_holds_the_lease_and_renews_it() {
        let (a, b) = two();
        assert!(a.tick().await.unwrap());
        assert!(!b.tick().await.unwrap());
        for _ in 0..10 {
            tokio::time::advance(TTL / 4).await;
            assert!(a.tick().await.unwrap(), "renewed in time");
            assert!(!b.tick().await.unwrap(), "a renewing holder keeps it");
            assert!(a.held() && !b.held());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_lease_moves_once_its_holder_stops_renewing_and_the_holder_knows_first() {
        let (a, b) = two();
        assert!(a.tick().await.unwrap());
        assert!(!b.tick().await.unwrap());
        // a stops renewing (killed, or paused).
        tokio::time::advance(TTL - Duration::from_millis(1)).await;
        assert!(!b.tick().await.unwrap(), "not before a whole time to live");
        assert!(a.held());
        tokio::time::advance(Duration::from_millis(2)).await;
        assert!(!a.held(), "the holder stops believing it holds it first");
        assert!(b.tick().await.unwrap());
        // a comes back: it finds b's lease and does not take it.
        assert!(!a.tick().await.unwrap());
        assert!(b.held() && !a.held());
    }

    #[tokio::test(start_paused = true)]
    async fn a_released_lease_is_taken_at_once() {
        let (a, b) = two();
        assert!(a.tick().await.unwrap());
        assert!(!b.tick().await.unwrap());
        a.release().await;
        assert!(!a.held());
        assert!(b.tick().await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn a_restarted_holder_takes_its_own_lease_back_at_once() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let a = Lease::new(Some(Arc::clone(&store)), "compactor", "a", TTL);
        assert!(a.tick().await.unwrap());
        drop(a);
        let again = Lease::new(Some(store), "compactor", "a", TTL);
        assert!(again.tick().await.unwrap());
    }

    #[tokio::test]
    async fn a_local_directory_s_lease_is_always_held() {
        let lease = Lease::new(None, "compactor", "a", TTL);
        assert!(lease.held());
        assert!(lease.tick().await.unwrap());
    }
}

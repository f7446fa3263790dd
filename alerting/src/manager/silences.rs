//! Silences: created, listed and expired through the API, kept in the
//! database and applied by `suppress.rs`.

use std::time::Duration;

use smolder_common::Tenant;

use super::{Alerting, Error};
use crate::matchers::Matchers;
use crate::notification::new_id;
use crate::silence::Silence;

impl Alerting {
    /// Every silence of `tenant`, active first.
    pub async fn silences(&self, tenant: &Tenant) -> Vec<(Silence, &'static str)> {
        let now = chrono::DateTime::from_timestamp_nanos(self.clock.now_ns());
        let inner = self.inner.lock().await;
        let mut out: Vec<_> = inner
            .silences
            .iter()
            .filter(|s| s.tenant == *tenant)
            .map(|s| (s.clone(), s.status(now)))
            .collect();
        let rank = |s: &str| match s {
            "active" => 0,
            "pending" => 1,
            _ => 2,
        };
        out.sort_by(|a, b| {
            rank(a.1)
                .cmp(&rank(b.1))
                .then(b.0.ends_at.cmp(&a.0.ends_at))
        });
        out
    }

    /// Creates a silence of `s.tenant`'s alerts. Ids are unique across
    /// tenants (another tenant's id is taken, and not told whose).
    pub async fn add_silence(&self, mut s: Silence) -> Result<Silence, Error> {
        let matchers =
            Matchers::parse(&s.matchers).map_err(|e| Error::Invalid(format!("matchers: {e}")))?;
        if !matchers.is_selective() {
            return Err(Error::Invalid(
                "matchers: at least one matcher must not match an empty label, or the silence would silence every alert"
                    .to_string(),
            ));
        }
        if s.ends_at <= s.starts_at {
            return Err(Error::Invalid(
                "ends_at must be after starts_at".to_string(),
            ));
        }
        let now = chrono::DateTime::from_timestamp_nanos(self.clock.now_ns());
        if s.ends_at <= now {
            return Err(Error::Invalid("ends_at is in the past".to_string()));
        }
        if s.id.is_empty() {
            s.id = new_id(self.clock.now_ns()).replacen("msg_", "sil_", 1);
        }
        s.created_at = now;
        let mut inner = self.inner.lock().await;
        if inner.silences.iter().any(|x| x.id == s.id) {
            return Err(Error::Conflict(format!(
                "silence {:?} exists; expire it (DELETE /api/v1/silences/{{id}}) or leave id out",
                s.id
            )));
        }
        self.store.put_silence(&s)?;
        inner.silences.push(s.clone());
        Ok(s)
    }

    /// Expires `tenant`'s silence now.
    pub async fn expire_silence(&self, tenant: &Tenant, id: &str) -> Result<Silence, Error> {
        let now = chrono::DateTime::from_timestamp_nanos(self.clock.now_ns());
        let mut inner = self.inner.lock().await;
        let found = inner
            .silences
            .iter_mut()
            .find(|s| s.id == id && s.tenant == *tenant);
        let Some(s) = found else {
            return Err(Error::NotFound(format!("no silence {id:?}")));
        };
        if s.ends_at > now {
            s.ends_at = now.max(s.starts_at);
        }
        self.store.put_silence(s)?;
        Ok(s.clone())
    }

    /// The longest a silence may last.
    pub fn max_silence(&self) -> Duration {
        self.runtime().config.max_silence
    }
}

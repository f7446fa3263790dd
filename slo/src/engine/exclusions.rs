//! Budget exclusions in the engine: those of a definition's annotation and
//! those made through the API (stored in `slo.db`), masked in the SLO's
//! rollups ([`super::state::InstanceState::set_exclusions`]), in the
//! buckets charts read from the database, and in backtests' history.
//! Adding or removing one changes the masks at once; the next evaluation
//! (which the API runs right away) shows the recomputed figures.

use std::collections::BTreeMap;
use std::sync::Arc;

use smolder_common::sync::{read, write};

use super::SloEngine;
use crate::Result;
use crate::exclusion::{Exclusion, ExclusionOrigin, ExclusionSpec, Exclusions, MAX_PER_SLO};
use crate::model::SloDefinition;
use crate::persist::{Db, StoredExclusion};

/// Why an exclusion was not added or removed.
#[derive(Debug, Clone, PartialEq)]
pub enum ExclusionError {
    /// No such SLO (or exclusion).
    NotFound(String),
    /// The exclusion is not valid; the message names the field.
    Invalid(String),
    /// It belongs to the SLO's annotation: change the definition.
    Conflict(String),
    /// The SLO has as many exclusions as it may.
    Limit(String),
    /// The database failed.
    Storage(String),
}

/// The API's exclusions of every SLO, from the database.
pub(super) fn load(db: &Db) -> Result<BTreeMap<String, Vec<Exclusion>>> {
    let mut out: BTreeMap<String, Vec<Exclusion>> = BTreeMap::new();
    for stored in db.exclusions()? {
        match checked(&stored) {
            Ok(x) => out.entry(stored.slo.clone()).or_default().push(x),
            Err(e) => {
                tracing::warn!(slo = %stored.slo, exclusion = stored.id, error = %e, "A stored exclusion no longer loads; it is ignored.");
            }
        }
    }
    Ok(out)
}

fn checked(stored: &StoredExclusion) -> Result<Exclusion, String> {
    let spec: ExclusionSpec = serde_json::from_str(&stored.spec).map_err(|e| e.to_string())?;
    Exclusion::new(
        stored.id.to_string(),
        spec,
        ExclusionOrigin::Api {
            created_by: stored.created_by.clone(),
            created_at: smolder_common::text::rfc3339(
                stored.created_ns,
                chrono::SecondsFormat::Secs,
            ),
        },
    )
}

impl SloEngine {
    /// The exclusions of `def`: its annotation's, then those made through
    /// the API for its id.
    pub fn exclusions(&self, def: &SloDefinition) -> Exclusions {
        let mut all = def.exclusions.clone();
        if let Some(api) = read(&self.api_exclusions).get(&def.id) {
            all.extend(api.iter().cloned());
        }
        Exclusions::new(all)
    }

    /// The exclusions of the running SLO `id`, `None` for an unknown SLO.
    pub fn exclusions_of(&self, id: &str) -> Option<Exclusions> {
        let def = Arc::clone(&read(&self.runtimes).get(id)?.def);
        Some(self.exclusions(&def))
    }

    /// Adds an exclusion to the SLO `id`, made by `created_by`; its events
    /// stop counting at once.
    pub async fn add_exclusion(
        &self,
        id: &str,
        spec: ExclusionSpec,
        created_by: &str,
    ) -> Result<Exclusion, ExclusionError> {
        if !read(&self.runtimes).contains_key(id) {
            return Err(ExclusionError::NotFound(format!("no SLO {id:?}")));
        }
        let now = self.clock.now_ns();
        // Checked before it is stored; numbered once stored.
        let origin = ExclusionOrigin::Api {
            created_by: created_by.to_string(),
            created_at: smolder_common::text::rfc3339(now, chrono::SecondsFormat::Secs),
        };
        let mut exclusion =
            Exclusion::new(String::new(), spec, origin).map_err(ExclusionError::Invalid)?;
        let count = read(&self.api_exclusions).get(id).map_or(0, Vec::len);
        if count >= MAX_PER_SLO {
            return Err(ExclusionError::Limit(format!(
                "SLO {id:?} has {count} exclusions, the most one SLO may have; delete old ones first"
            )));
        }
        let json = serde_json::to_string(&exclusion.spec)
            .map_err(|e| ExclusionError::Storage(e.to_string()))?;
        exclusion.id = self
            .db
            .add_exclusion(id, &json, created_by, now)
            .map_err(|e| ExclusionError::Storage(e.to_string()))?
            .to_string();
        write(&self.api_exclusions)
            .entry(id.to_string())
            .or_default()
            .push(exclusion.clone());
        self.apply_exclusions(id).await;
        Ok(exclusion)
    }

    /// Removes the API's exclusion `number` of SLO `id` (and returns it):
    /// its events count again at once.
    pub async fn remove_exclusion(
        &self,
        id: &str,
        number: &str,
    ) -> Result<Exclusion, ExclusionError> {
        let Some(exclusions) = self.exclusions_of(id) else {
            return Err(ExclusionError::NotFound(format!("no SLO {id:?}")));
        };
        let Some(x) = exclusions.list().iter().find(|x| x.id == number).cloned() else {
            return Err(ExclusionError::NotFound(format!(
                "SLO {id:?} has no exclusion {number:?}"
            )));
        };
        if x.origin == ExclusionOrigin::Annotation {
            return Err(ExclusionError::Conflict(format!(
                "exclusion {number:?} is in the SLO's {} annotation; change the definition",
                crate::exclusion::ANNOTATION
            )));
        }
        let n: i64 = number
            .parse()
            .map_err(|_| ExclusionError::NotFound(format!("no exclusion {number:?}")))?;
        self.db
            .delete_exclusion(id, n)
            .map_err(|e| ExclusionError::Storage(e.to_string()))?;
        if let Some(list) = write(&self.api_exclusions).get_mut(id) {
            list.retain(|x| x.id != number);
        }
        self.apply_exclusions(id).await;
        Ok(x)
    }

    /// Forgets the API's exclusions of an SLO deleted through the API.
    pub(super) fn forget_exclusions(&self, id: &str) -> Result<()> {
        self.db.delete_exclusions(id)?;
        write(&self.api_exclusions).remove(id);
        Ok(())
    }

    /// Masks the SLO's current exclusions in its rollups.
    async fn apply_exclusions(&self, id: &str) {
        let Some(rt) = read(&self.runtimes).get(id).cloned() else {
            return;
        };
        let exclusions = self.exclusions(&rt.def);
        let now = self.clock.now_ns();
        rt.state
            .lock()
            .await
            .set_exclusions(exclusions, rt.bucket_ns, rt.capacity, now);
    }
}

//! What the engine keeps per SLO: its compiled definition ([`Runtime`]) and
//! its rollups with their watermark, baselines, memory share and failure
//! back-off ([`InstanceState`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use smolder_common::sync::lock;

use smolder_common::memory::Reservation;

use super::GroupKey;
use crate::exclusion::{Exclusions, Occurrence, buckets_of};
use crate::model::{SloDefinition, duration_ns};
use crate::rollup::{Excluded, Rollup};
use crate::rows::RowConditions;
use crate::sql::Baseline;
use crate::{Error, Result};

#[derive(Debug, Clone)]
pub(super) struct InstanceState {
    pub(super) groups: BTreeMap<GroupKey, Rollup>,
    /// Events before this time have been rolled up.
    pub(super) watermark: i64,
    pub(super) horizon_start: i64,
    /// Rows of groups beyond the limit, ignored.
    pub(super) dropped_groups: u64,
    pub(super) last_error: Option<String>,
    pub(super) last_update: Option<Duration>,
    /// Counters and histograms: the last point of each cumulative series
    /// before the range the next update reads, by series hash.
    pub(super) baselines: HashMap<i64, Baseline>,
    /// The share of the process's memory budget the groups' rollups hold
    /// (shared with the copy a reload keeps).
    pub(super) memory: Arc<std::sync::Mutex<Reservation>>,
    /// Updates that failed in a row; each doubles the wait before the next.
    pub(super) failures: u32,
    /// No update before this time (ns) after a failure.
    pub(super) retry_at: i64,
    /// The SLO's budget exclusions (its definition's and the API's).
    pub(super) exclusions: Exclusions,
    /// Their occurrences from the ring's oldest bucket to
    /// `excluded_through`, and the buckets those touch, masked in every
    /// group's rollup (and in those made later).
    pub(super) occurrences: Vec<Occurrence>,
    pub(super) excluded: Excluded,
    pub(super) excluded_through: i64,
}

/// Occurrences are worked out this far ahead of now, and again when now
/// comes within [`EXCLUSIONS_RENEWED_BEFORE`] of that end: a rule is not
/// walked at every tick.
const EXCLUSIONS_AHEAD_NS: i64 = 86_400 * 1_000_000_000;
const EXCLUSIONS_RENEWED_BEFORE: i64 = 3_600 * 1_000_000_000;

/// Memory a group holds besides its rollup: its key, the map's entry.
pub(super) const GROUP_OVERHEAD_BYTES: usize = 128;

/// The longest wait between retries of an SLO whose updates keep failing.
pub(super) const MAX_RETRY_WAIT: Duration = Duration::from_secs(300);

impl InstanceState {
    /// Bytes the groups' rollups hold.
    pub(super) fn bytes(&self) -> usize {
        self.groups
            .iter()
            .map(|(key, r)| {
                r.bytes() + GROUP_OVERHEAD_BYTES + key.iter().map(String::len).sum::<usize>()
            })
            .sum()
    }

    /// Takes what the groups now hold from the memory budget. Beyond the
    /// budget the rollups are dropped (they are recomputed from the stored
    /// telemetry once memory allows) and the SLO reports why.
    pub(super) fn account(&mut self) -> Result<()> {
        let bytes = self.bytes();
        let mut memory = lock(&self.memory);
        if let Err(e) = memory.resize(bytes) {
            let groups = self.groups.len();
            self.groups.clear();
            self.baselines.clear();
            self.watermark = self.horizon_start;
            let _ = memory.resize(0);
            return Err(Error::Resources(format!(
                "the rollups of {groups} groups need {bytes} bytes and {e}; they are \
                 recomputed when memory allows"
            )));
        }
        Ok(())
    }

    /// Records a failed update and when to try again: after one tick, then
    /// twice as long after each further failure, at most [`MAX_RETRY_WAIT`].
    pub(super) fn failed(&mut self, message: String, now: i64, interval: Duration) {
        self.failures = self.failures.saturating_add(1);
        let wait = interval
            .saturating_mul(1 << self.failures.min(16))
            .min(MAX_RETRY_WAIT);
        self.retry_at = now.saturating_add(duration_ns(wait));
        self.last_error = Some(message);
    }

    /// Masks `exclusions` (instead of those masked so far) in the groups'
    /// buckets: every figure computed afterwards leaves them out.
    pub(super) fn set_exclusions(
        &mut self,
        exclusions: Exclusions,
        bucket_ns: i64,
        capacity: usize,
        now: i64,
    ) {
        self.exclusions = exclusions;
        self.mask_exclusions(bucket_ns, capacity, now);
    }

    /// Works the occurrences out again when `now` nears the end of those
    /// worked out (recurring exclusions go on).
    pub(super) fn renew_exclusions(&mut self, bucket_ns: i64, capacity: usize, now: i64) {
        if !self.exclusions.is_empty()
            && now.saturating_add(EXCLUSIONS_RENEWED_BEFORE) >= self.excluded_through
        {
            self.mask_exclusions(bucket_ns, capacity, now);
        }
    }

    fn mask_exclusions(&mut self, bucket_ns: i64, capacity: usize, now: i64) {
        let ring = i64::try_from(capacity)
            .unwrap_or(i64::MAX)
            .saturating_add(1)
            .saturating_mul(bucket_ns);
        let (from, to) = (
            now.saturating_sub(ring),
            now.saturating_add(EXCLUSIONS_AHEAD_NS),
        );
        self.occurrences = self.exclusions.occurrences(from, to);
        self.excluded = buckets_of(&self.occurrences, bucket_ns);
        for rollup in self.groups.values_mut() {
            rollup.set_excluded(self.excluded.clone());
        }
        self.excluded_through = to;
    }

    pub(super) fn succeeded(&mut self) {
        self.failures = 0;
        self.retry_at = i64::MIN;
        self.last_error = None;
    }
}

#[derive(Debug)]
pub(super) struct Runtime {
    pub(super) def: Arc<SloDefinition>,
    /// The compiled conditions of a row SLI without groups: its rollups
    /// come from one read of the table shared with the other such SLOs.
    pub(super) rows: Option<RowConditions>,
    /// Why a row SLI without groups has no compiled conditions (and so is
    /// rolled up on its own).
    pub(super) rows_error: Option<String>,
    pub(super) bucket_ns: i64,
    pub(super) fingerprint: String,
    pub(super) capacity: usize,
    pub(super) state: tokio::sync::Mutex<InstanceState>,
}

//! The delivery engine: sends what the outbox holds.
//!
//! Notifications are in the outbox (SQLite) before they are sent, and this
//! queue mirrors its pending rows. Within a group, notifications go one at a
//! time in the order they were created: a later one waits for the earlier
//! one to be delivered or given up. Each receiver has a limit on requests in
//! flight and, optionally, on requests per second. A failed attempt worth
//! retrying (5xx, 429, network) waits with exponential backoff and jitter, or
//! the receiver's `Retry-After`; once the next attempt would come after
//! `max_retry_age`, the notification is dead-lettered. Other 4xx answers fail
//! at once, with the answer recorded.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{BackoffBuilder as _, ExponentialBuilder};
use smolder_common::clock::Clock;
use tokio::sync::Notify;

use crate::config::DeliveryConfig;
use crate::notification::Notification;
use crate::receivers::{Outcome, Receiver};
use crate::store::{AttemptRecord, DeliveryState, Store};
use smolder_common::sync::lock;

#[derive(Debug)]
struct Item {
    n: Arc<Notification>,
    attempts: u32,
    next_at: i64,
}

/// Pending notifications: per group in order, and the heads of the groups
/// that are not in flight, by due time.
#[derive(Debug, Default)]
struct Queue {
    items: HashMap<i64, Item>,
    groups: HashMap<(String, String), VecDeque<i64>>,
    ready: BTreeSet<(i64, i64)>,
}

fn group_of(n: &Notification) -> (String, String) {
    (n.receiver.clone(), n.group_key.clone())
}

impl Queue {
    fn push(&mut self, seq: i64, item: Item) {
        let queue = self.groups.entry(group_of(&item.n)).or_default();
        if queue.is_empty() {
            self.ready.insert((item.next_at, seq));
        }
        queue.push_back(seq);
        self.items.insert(seq, item);
    }

    /// The head of a group is done: the next one becomes ready.
    fn finish(&mut self, seq: i64) {
        let Some(item) = self.items.remove(&seq) else {
            return;
        };
        self.ready.remove(&(item.next_at, seq));
        let group = group_of(&item.n);
        if let Some(queue) = self.groups.get_mut(&group) {
            queue.retain(|&s| s != seq);
            match queue
                .front()
                .and_then(|next| self.items.get(next).map(|i| (i.next_at, *next)))
            {
                Some(head) => {
                    self.ready.insert(head);
                }
                None => {
                    self.groups.remove(&group);
                }
            }
        }
    }

    /// The head of a group failed and waits until `next_at`.
    fn retry(&mut self, seq: i64, attempts: u32, next_at: i64) {
        if let Some(item) = self.items.get_mut(&seq) {
            item.attempts = attempts;
            item.next_at = next_at;
            self.ready.insert((next_at, seq));
        }
    }
}

/// Counters of the delivery engine, for `/metrics`.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Attempts by receiver and outcome (`delivered`, `retry`, `failed`,
    /// `dead`).
    pub attempts: Mutex<BTreeMap<(String, &'static str), u64>>,
}

/// The delivery engine.
pub struct Deliverer {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    receivers: Mutex<Arc<HashMap<String, Arc<Receiver>>>>,
    delivery: Mutex<DeliveryConfig>,
    queue: Mutex<Queue>,
    wake: Notify,
    /// Counters.
    pub stats: DeliveryStats,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").finish_non_exhaustive()
    }
}

impl Deliverer {
    /// A delivery engine over the outbox; loads its pending notifications.
    pub fn new(store: Arc<Store>, clock: Arc<dyn Clock>) -> Result<Self, crate::store::StoreError> {
        let mut queue = Queue::default();
        for (seq, n, attempts, next_at) in store.pending()? {
            queue.push(
                seq,
                Item {
                    n: Arc::new(n),
                    attempts,
                    next_at,
                },
            );
        }
        if !queue.items.is_empty() {
            tracing::info!(
                pending = queue.items.len(),
                "Resuming pending notifications."
            );
        }
        Ok(Self {
            store,
            clock,
            receivers: Mutex::new(Arc::new(HashMap::new())),
            delivery: Mutex::new(DeliveryConfig::default()),
            queue: Mutex::new(queue),
            wake: Notify::new(),
            stats: DeliveryStats::default(),
        })
    }

    /// Replaces the receivers and delivery settings (configuration reload).
    pub fn configure(&self, receivers: HashMap<String, Arc<Receiver>>, delivery: DeliveryConfig) {
        *lock(&self.receivers) = Arc::new(receivers);
        *lock(&self.delivery) = delivery;
        self.wake.notify_one();
    }

    /// Adds notifications just written to the outbox.
    pub fn push(&self, items: impl IntoIterator<Item = (i64, Notification)>) {
        let mut q = lock(&self.queue);
        for (seq, n) in items {
            let next_at = n.created_at;
            q.push(
                seq,
                Item {
                    n: Arc::new(n),
                    attempts: 0,
                    next_at,
                },
            );
        }
        drop(q);
        self.wake.notify_one();
    }

    /// Notifications waiting to be delivered.
    pub fn pending(&self) -> usize {
        lock(&self.queue).items.len()
    }

    /// Sends until `stop` resolves.
    pub async fn run(self: Arc<Self>, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let wait = self.dispatch_due();
            tokio::select! {
                () = &mut stop => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Starts every notification that may go now; returns how long to wait
    /// for the next one that is not yet due.
    fn dispatch_due(self: &Arc<Self>) -> Duration {
        let now = self.clock.now_ns();
        let receivers = Arc::clone(&lock(&self.receivers));
        let mut next_wake = now + 1_000_000_000;
        let mut q = lock(&self.queue);
        let mut start = Vec::new();
        let mut unknown = Vec::new();
        for &(next_at, seq) in &q.ready {
            if next_at > now {
                next_wake = next_wake.min(next_at);
                break;
            }
            let Some(item) = q.items.get(&seq) else {
                continue;
            };
            let Some(receiver) = receivers.get(&item.n.receiver) else {
                unknown.push(seq);
                continue;
            };
            // A receiver at its limit of requests in flight is woken again
            // by the next completion.
            let Ok(permit) = Arc::clone(&receiver.concurrency).try_acquire_owned() else {
                continue;
            };
            if let Some(limiter) = &receiver.limiter
                && let Err(not_until) = limiter.check()
            {
                let wait = not_until.wait_time_from(governor::clock::Clock::now(
                    &governor::clock::DefaultClock::default(),
                ));
                next_wake = next_wake.min(now + i64::try_from(wait.as_nanos()).unwrap_or(i64::MAX));
                continue;
            }
            start.push((
                (next_at, seq),
                Arc::clone(&item.n),
                item.attempts,
                Arc::clone(receiver),
                permit,
            ));
        }
        // Started heads leave `ready` (their group is in flight) until they
        // finish or are retried.
        for (key, ..) in &start {
            q.ready.remove(key);
        }
        drop(q);
        for seq in unknown {
            self.finish_unknown(seq, now);
        }
        for ((_, seq), n, attempts, receiver, permit) in start {
            let this = Arc::clone(self);
            tokio::spawn(async move {
                let outcome = receiver.send(&n).await;
                drop(permit);
                this.complete(seq, &n, attempts + 1, outcome);
            });
        }
        Duration::from_nanos(u64::try_from((next_wake - now).max(1_000_000)).unwrap_or(1_000_000))
    }

    fn finish_unknown(&self, seq: i64, now: i64) {
        let mut q = lock(&self.queue);
        let Some(n) = q.items.get(&seq).map(|i| Arc::clone(&i.n)) else {
            return;
        };
        let attempts = q.items.get(&seq).map_or(0, |i| i.attempts);
        q.finish(seq);
        drop(q);
        let rec = AttemptRecord {
            attempts,
            state: DeliveryState::Failed,
            at: now,
            next_attempt_at: now,
            status: None,
            error: Some(format!(
                "no receiver named {:?} in the configuration",
                n.receiver
            )),
        };
        if let Err(e) = self.store.record(seq, &rec) {
            tracing::error!(error = %e, "Recording a delivery failed.");
        }
        self.wake.notify_one();
    }

    fn complete(&self, seq: i64, n: &Notification, attempts: u32, outcome: Outcome) {
        let now = self.clock.now_ns();
        let delivery = lock(&self.delivery).clone();
        let (state, status, error, next_at) = match outcome {
            Outcome::Delivered { status } => (DeliveryState::Delivered, status, None, now),
            Outcome::Failed { status, error } => (DeliveryState::Failed, status, Some(error), now),
            Outcome::Retry {
                status,
                error,
                retry_after,
            } => {
                let delay = retry_after.unwrap_or_else(|| backoff(&delivery, attempts));
                let next_at = now + i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX / 2);
                let age_limit = n.created_at
                    + i64::try_from(delivery.max_retry_age.as_nanos()).unwrap_or(i64::MAX / 2);
                if next_at > age_limit {
                    let error = format!(
                        "{error} (gave up: no success within max_retry_age {})",
                        humantime::format_duration(delivery.max_retry_age)
                    );
                    (DeliveryState::Dead, status, Some(error), now)
                } else {
                    (DeliveryState::Pending, status, Some(error), next_at)
                }
            }
        };
        let rec = AttemptRecord {
            attempts,
            state,
            at: now,
            next_attempt_at: next_at,
            status,
            error: error.clone(),
        };
        match state {
            DeliveryState::Delivered => {
                tracing::debug!(receiver = %n.receiver, id = %n.id, attempts, "Notification delivered.")
            }
            DeliveryState::Pending => {
                tracing::info!(receiver = %n.receiver, id = %n.id, attempts, error = error.as_deref().unwrap_or(""), "Notification attempt failed; will retry.")
            }
            _ => {
                tracing::warn!(receiver = %n.receiver, id = %n.id, attempts, error = error.as_deref().unwrap_or(""), "Notification not delivered.")
            }
        }
        if let Err(e) = self.store.record(seq, &rec) {
            // The row stays pending in the database and is retried after a
            // restart; in memory it follows the attempt's result.
            tracing::error!(error = %e, "Recording a delivery failed.");
        }
        {
            let mut stats = lock(&self.stats.attempts);
            let outcome = match state {
                DeliveryState::Delivered => "delivered",
                DeliveryState::Pending => "retry",
                DeliveryState::Failed => "failed",
                DeliveryState::Dead => "dead",
            };
            *stats.entry((n.receiver.clone(), outcome)).or_default() += 1;
        }
        let mut q = lock(&self.queue);
        if state == DeliveryState::Pending {
            q.retry(seq, attempts, next_at);
        } else {
            q.finish(seq);
        }
        drop(q);
        self.wake.notify_one();
    }
}

/// Delay before attempt `attempts + 1`: exponential from `initial_backoff`,
/// capped at `max_backoff`, with jitter.
pub fn backoff(d: &DeliveryConfig, attempts: u32) -> Duration {
    ExponentialBuilder::default()
        .with_min_delay(d.initial_backoff)
        .with_max_delay(d.max_backoff)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build()
        .nth(attempts.saturating_sub(1) as usize)
        .unwrap_or(d.max_backoff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let d = DeliveryConfig {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            ..Default::default()
        };
        let first = backoff(&d, 1);
        assert!(
            first >= Duration::from_millis(100) && first < Duration::from_millis(200),
            "{first:?}"
        );
        let fourth = backoff(&d, 4);
        assert!(fourth >= Duration::from_millis(800), "{fourth:?}");
        let late = backoff(&d, 30);
        assert!(
            late <= Duration::from_secs(4),
            "capped (with jitter): {late:?}"
        );
    }
}

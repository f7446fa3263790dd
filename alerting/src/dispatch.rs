//! Aggregation groups and their timers, with Alertmanager's semantics.
//!
//! A firing alert joins one group per route that takes it (the group is the
//! route and the values of its `group_by` labels). A new group notifies after
//! `group_wait`; after that it is looked at every `group_interval`, and it
//! notifies when the set of firing alerts differs from the one last notified
//! (the notification log), when an alert that was notified resolved, or when
//! `repeat_interval` passed since the last notification. Silenced and
//! inhibited alerts are left out of notifications.

use std::collections::{BTreeMap, HashMap};

use crate::alert::{Alert, Labels, State};
use crate::notification::{Notification, new_id};
use crate::route::CompiledRoute;
use crate::store::NflogEntry;

/// One aggregation group.
#[derive(Debug, Clone)]
pub struct Group {
    /// `route-path:{labels}`.
    pub key: String,
    /// The receiver.
    pub receiver: String,
    /// The grouping labels.
    pub labels: Labels,
    /// Its alerts, by fingerprint.
    pub alerts: BTreeMap<String, Alert>,
    /// When it is looked at next (Unix ns).
    pub next_flush: i64,
    group_interval: i64,
    repeat_interval: i64,
}

/// Timing of a receiver that differs from its route's.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReceiverTiming {
    /// Alertmanager receivers: firing alerts are re-sent this often.
    pub resend_interval: Option<i64>,
}

/// What a flush decided.
#[derive(Debug)]
pub struct Flush {
    /// The notification to send.
    pub notification: Notification,
    /// The notification log entry to write with it.
    pub nflog: NflogEntry,
}

/// Every aggregation group, by (receiver, key).
#[derive(Debug, Default)]
pub struct Dispatcher {
    groups: HashMap<(String, String), Group>,
}

fn ns(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl Dispatcher {
    /// Puts a firing or resolved alert into its group at `route`. A new group
    /// flushes after `group_wait`; a resolved alert only updates groups that
    /// hold it.
    pub fn insert(
        &mut self,
        alert: &Alert,
        route: &CompiledRoute,
        timing: ReceiverTiming,
        now: i64,
    ) {
        let (labels, key) = route.group_of(&alert.labels);
        let id = (route.receiver.clone(), key.clone());
        match alert.state {
            State::Pending => {}
            State::Resolved => {
                if let Some(g) = self.groups.get_mut(&id)
                    && let Some(a) = g.alerts.get_mut(&alert.fingerprint)
                {
                    *a = alert.clone();
                }
            }
            State::Firing => {
                let mut group_interval = ns(route.group_interval);
                let mut repeat_interval = ns(route.repeat_interval);
                if let Some(resend) = timing.resend_interval {
                    group_interval = group_interval.min(resend);
                    repeat_interval = resend;
                }
                let g = self.groups.entry(id).or_insert_with(|| Group {
                    key,
                    receiver: route.receiver.clone(),
                    labels,
                    alerts: BTreeMap::new(),
                    next_flush: now + ns(route.group_wait),
                    group_interval,
                    repeat_interval,
                });
                g.alerts.insert(alert.fingerprint.clone(), alert.clone());
            }
        }
    }

    /// Groups due at `now`.
    pub fn due(&self, now: i64) -> Vec<(String, String)> {
        let mut due: Vec<_> = self
            .groups
            .iter()
            .filter(|(_, g)| g.next_flush <= now)
            .map(|(id, _)| id.clone())
            .collect();
        due.sort();
        due
    }

    /// The earliest timer of any group.
    pub fn next_deadline(&self) -> Option<i64> {
        self.groups.values().map(|g| g.next_flush).min()
    }

    /// Whether any group holds an alert.
    pub fn holds(&self, fingerprint: &str) -> bool {
        self.groups
            .values()
            .any(|g| g.alerts.contains_key(fingerprint))
    }

    /// Every group.
    pub fn groups(&self) -> impl Iterator<Item = &Group> {
        self.groups.values()
    }

    /// Looks at a due group: returns the notification to send, if any.
    /// Resolved alerts leave the group; an empty group is dropped.
    #[allow(clippy::too_many_arguments)]
    pub fn flush(
        &mut self,
        id: &(String, String),
        now: i64,
        last: Option<NflogEntry>,
        suppressed: impl Fn(&Alert) -> bool,
        send_resolved: bool,
        external_url: &str,
        resend_interval: i64,
    ) -> Option<Flush> {
        let g = self.groups.get_mut(id)?;
        g.next_flush = now + g.group_interval;
        let last = last.unwrap_or_default();
        let firing: Vec<&Alert> = g
            .alerts
            .values()
            .filter(|a| a.state == State::Firing && !suppressed(a))
            .collect();
        let resolved: Vec<&Alert> = g
            .alerts
            .values()
            .filter(|a| a.state == State::Resolved && last.firing.contains(&a.fingerprint))
            .collect();
        let mut firing_set: Vec<String> = firing.iter().map(|a| a.fingerprint.clone()).collect();
        firing_set.sort();
        let mut last_set = last.firing.clone();
        last_set.sort();
        let notify = if firing.is_empty() {
            send_resolved && !last.firing.is_empty() && !resolved.is_empty()
        } else {
            firing_set != last_set
                || (send_resolved && !resolved.is_empty())
                || now - last.sent_at >= g.repeat_interval
        };
        let out = notify.then(|| {
            let id = new_id(now);
            let thread = last.thread.clone().unwrap_or_else(|| id.clone());
            let mut alerts: Vec<Alert> = firing.iter().map(|a| (*a).clone()).collect();
            if send_resolved {
                alerts.extend(resolved.iter().map(|a| (*a).clone()));
            }
            let notification = Notification {
                id,
                receiver: g.receiver.clone(),
                group_key: g.key.clone(),
                group_labels: g.labels.clone(),
                status: if firing.is_empty() {
                    "resolved"
                } else {
                    "firing"
                }
                .to_string(),
                alerts,
                created_at: now,
                thread: thread.clone(),
                external_url: external_url.to_string(),
                resend_interval_ns: resend_interval,
                scaling: None,
                report: None,
                tenant: crate::alert::tenant_of(&g.labels),
            };
            Flush {
                notification,
                nflog: NflogEntry {
                    firing: firing_set.clone(),
                    sent_at: now,
                    // A new incident starts a new mail thread once the group
                    // fully resolved.
                    thread: (!firing_set.is_empty()).then_some(thread),
                },
            }
        });
        g.alerts.retain(|_, a| a.state != State::Resolved);
        if g.alerts.is_empty() {
            self.groups.remove(id);
        }
        out
    }
}

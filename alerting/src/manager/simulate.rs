//! The notifications a backtest's alerts would have sent: the live routing
//! tree, groups and their timers, inhibition rules, silences and
//! maintenance windows, in simulated time, with a notification log of its
//! own (nothing is stored or sent).
//!
//! Groups are flushed at their timers' instants (live, the flush loop looks
//! every 200 ms, so a live notification leaves up to that much later).
//! Inhibition sees the replayed SLO's alerts only; the silences are those
//! the alerting database holds now (expired ones included, with their
//! times), so a silence set during a past incident mutes its replay too.

use std::collections::HashMap;
use std::sync::Arc;

use super::runtime::Runtime;
use super::suppress::suppressor;
use super::{Alerting, flush_groups, route_into};
use crate::alert::{Alert, State};
use crate::dispatch::Dispatcher;
use crate::notification::Notification;
use crate::silence::Silence;
use crate::store::NflogEntry;

/// Routing, grouping and suppression of replayed alerts.
pub struct Simulation {
    rt: Arc<Runtime>,
    silences: Vec<Silence>,
    dispatcher: Dispatcher,
    nflog: HashMap<(String, String), NflogEntry>,
    active: HashMap<String, Alert>,
    /// The notifications, in the order they would have been sent.
    pub sent: Vec<Notification>,
}

impl std::fmt::Debug for Simulation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulation")
            .field("sent", &self.sent.len())
            .finish_non_exhaustive()
    }
}

impl Alerting {
    /// A simulation with the current configuration and silences.
    pub async fn simulation(&self) -> Simulation {
        let silences = self.inner.lock().await.silences.clone();
        Simulation {
            rt: self.runtime(),
            silences,
            dispatcher: Dispatcher::default(),
            nflog: HashMap::new(),
            active: HashMap::new(),
            sent: Vec::new(),
        }
    }

    /// The lifecycle options alerts follow (hysteresis, flapping).
    pub fn lifecycle_options(&self) -> crate::alert::LifecycleOptions {
        self.runtime().options.clone()
    }
}

impl Simulation {
    /// The alerts one lifecycle step at `now` changed.
    pub fn step(&mut self, now: i64, changed: &[Alert]) {
        self.run_until(now);
        for alert in changed {
            match alert.state {
                State::Resolved => self.active.remove(&alert.fingerprint),
                _ => self.active.insert(alert.fingerprint.clone(), alert.clone()),
            };
            route_into(&self.rt, &mut self.dispatcher, alert, now);
        }
        self.flush(now);
    }

    /// Flushes the groups whose timers come before `until`, each at its
    /// timer's instant.
    pub fn run_until(&mut self, until: i64) {
        while let Some(at) = self.dispatcher.next_deadline() {
            if at >= until {
                break;
            }
            self.flush(at);
            // A timer that does not move on would loop forever.
            if self.dispatcher.next_deadline() == Some(at) {
                break;
            }
        }
    }

    fn flush(&mut self, now: i64) {
        let due = self.dispatcher.due(now);
        if due.is_empty() {
            return;
        }
        let suppressor = suppressor(&self.rt, &self.silences, &self.active, now);
        let nflog = &self.nflog;
        let flushed = flush_groups(
            &self.rt,
            None,
            &mut self.dispatcher,
            &suppressor,
            due,
            now,
            |id| Ok(nflog.get(id).cloned()),
        );
        for f in flushed {
            let id = (
                f.notification.receiver.clone(),
                f.notification.group_key.clone(),
            );
            self.nflog.insert(id, f.nflog);
            self.sent.push(f.notification);
        }
    }
}

//! The alerting stage: after each SLO tick [`Alerting::observe`] steps the
//! alert lifecycle ([`crate::alert`]), looks for causes of new alerts
//! (`causes.rs`), routes firing and resolved alerts into groups
//! ([`crate::dispatch`]), flushes due groups into the outbox (here) unless
//! silenced or inhibited (`suppress.rs`) and drives the scaling targets
//! (`scale.rs`); the [`Deliverer`] sends what the outbox holds. `runtime.rs` is
//! the configuration compiled (swapped whole on reload), `silences.rs` and
//! `views.rs` are what the API reads and changes.
//!
//! One task (the SLO tick) changes the lifecycle; the state sits behind one
//! async mutex that cause lookups release while their queries run, so the
//! API keeps answering.

mod causes;
mod reports;
mod runtime;
mod scale;
mod silences;
mod simulate;
mod suppress;
mod views;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use smolder_common::Tenant;
use smolder_common::clock::Clock;
use smolder_common::sync::{read, write};
use smolder_query::QueryEngine;
use smolder_slo::engine::Snapshot;
use smolder_slo::model::InstanceKey;

pub use self::simulate::Simulation;
pub use self::suppress::Suppression;
pub use self::views::{AlertStatus, SentPayload};

use self::causes::{apply_causes, cause_lookups};
use self::runtime::{Runtime, compile, timing};
use crate::alert::{Alert, Lifecycle, State};
use crate::chart::{ChartLinks, ChartRequest};
use crate::config::{AlertingConfig, ConfigProblem};
use crate::deliver::Deliverer;
use crate::dispatch::Dispatcher;
use crate::notification::Notification;
use crate::silence::Silence;
use crate::store::{ScalingState, Store, StoreError};

struct Inner {
    lifecycle: Lifecycle,
    dispatcher: Dispatcher,
    /// Resolved alerts kept until every group that held them flushed.
    resolved: HashMap<String, Alert>,
    silences: Vec<Silence>,
    scaling: HashMap<(String, InstanceKey), ScalingState>,
    snapshot: Option<Arc<Snapshot>>,
}

/// Errors of the alerting stage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration has problems.
    #[error("invalid alerting configuration:\n{}", .0.iter().map(|p| format!("  {p}")).collect::<Vec<_>>().join("\n"))]
    Config(Vec<ConfigProblem>),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A request was invalid.
    #[error("{0}")]
    Invalid(String),
    /// Something was not found.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with what exists.
    #[error("{0}")]
    Conflict(String),
}

/// The alerting stage.
pub struct Alerting {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    query: QueryEngine,
    deliverer: Arc<Deliverer>,
    runtime: RwLock<Arc<Runtime>>,
    inner: tokio::sync::Mutex<Inner>,
    client: reqwest::Client,
    default_external_url: String,
    charts: Arc<ChartLinks>,
}

impl std::fmt::Debug for Alerting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerting").finish_non_exhaustive()
    }
}

/// Installs the process's TLS crypto provider (ring) once, for HTTPS
/// receivers and SMTP over TLS.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl Alerting {
    /// The alerting stage over a database, with a configuration; refuses an
    /// invalid configuration with every problem and its field.
    pub fn new(
        store: Store,
        query: QueryEngine,
        clock: Arc<dyn Clock>,
        config: &AlertingConfig,
        default_external_url: String,
    ) -> Result<Arc<Self>, Error> {
        install_crypto_provider();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(32)
            .build()
            .map_err(|e| Error::Invalid(format!("HTTP client: {e}")))?;
        let charts = Arc::new(ChartLinks::new(store.secret("chart_links")?));
        let runtime =
            compile(config, &client, &default_external_url, &charts).map_err(Error::Config)?;
        let store = Arc::new(store);
        let deliverer = Arc::new(Deliverer::new(Arc::clone(&store), Arc::clone(&clock))?);
        deliverer.configure(runtime.receivers.clone(), config.delivery.clone());
        let now = clock.now_ns();
        let mut lifecycle = Lifecycle::default();
        let mut resolved = HashMap::new();
        let mut dispatcher = Dispatcher::default();
        for alert in store.alerts()? {
            if let Some(route) = &runtime.route {
                for r in route.routes_for(&alert.labels) {
                    // Restored groups: firing alerts already notified are in
                    // the notification log and are not notified again; a
                    // resolved alert not yet flushed joins its group (as if
                    // firing, then resolved) so its resolution is notified.
                    let t = timing(&runtime, &r.receiver);
                    if alert.state == State::Resolved {
                        let mut as_firing = alert.clone();
                        as_firing.state = State::Firing;
                        dispatcher.insert(&as_firing, r, t, now);
                    }
                    dispatcher.insert(&alert, r, t, now);
                }
            }
            match alert.state {
                State::Resolved => {
                    resolved.insert(alert.fingerprint.clone(), alert);
                }
                _ => {
                    lifecycle.active.insert(alert.fingerprint.clone(), alert);
                }
            }
        }
        let since = now.saturating_sub(smolder_slo::model::duration_ns(config.flap_window));
        for (fp, at) in store.firings_since(since)? {
            lifecycle.firings.entry(fp).or_default().push_back(at);
        }
        let silences = store.silences()?;
        let scaling = store
            .scalings()?
            .into_iter()
            .filter_map(|(t, i, s)| match InstanceKey::parse(&i) {
                Some(key) => Some(((t, key), s)),
                None => {
                    tracing::warn!(instance = %i, "Ignoring a stored scaling state of an unreadable instance.");
                    None
                }
            })
            .collect();
        Ok(Arc::new(Self {
            store,
            clock,
            query,
            deliverer,
            runtime: RwLock::new(Arc::new(runtime)),
            inner: tokio::sync::Mutex::new(Inner {
                lifecycle,
                dispatcher,
                resolved,
                silences,
                scaling,
                snapshot: None,
            }),
            client,
            default_external_url,
            charts,
        }))
    }

    /// The time on the stage's clock (Unix ns).
    pub fn now_ns(&self) -> i64 {
        self.clock.now_ns()
    }

    /// The chart links' signer and the charts' painter.
    pub fn charts(&self) -> &Arc<ChartLinks> {
        &self.charts
    }

    /// Applies a new configuration, or refuses it (keeping the current one)
    /// with every problem and its field.
    pub fn reload(&self, config: &AlertingConfig) -> Result<(), Error> {
        let runtime = compile(
            config,
            &self.client,
            &self.default_external_url,
            &self.charts,
        )
        .map_err(Error::Config)?;
        self.deliverer
            .configure(runtime.receivers.clone(), config.delivery.clone());
        *write(&self.runtime) = Arc::new(runtime);
        tracing::info!("Alerting configuration reloaded.");
        Ok(())
    }

    /// The burn-rate windows the scaling targets decide on, beyond the SLOs'
    /// own alert windows: the SLO engines evaluate these too
    /// ([`smolder_slo::WatchedWindows`]).
    pub fn watched_windows(&self) -> Vec<smolder_slo::model::Window> {
        self.runtime()
            .scaling
            .iter()
            .filter_map(|(target, _)| target.window())
            .collect()
    }

    /// The delivery engine.
    pub fn deliverer(&self) -> &Arc<Deliverer> {
        &self.deliverer
    }

    /// The database.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    fn runtime(&self) -> Arc<Runtime> {
        Arc::clone(&read(&self.runtime))
    }

    /// Steps everything with a new SLO snapshot: alert states, causes,
    /// groups, due notifications, scaling.
    /// Alerts change state at the snapshot's instant (the tick's, on the
    /// interval's grid), which a backtest replays.
    pub async fn observe(&self, snapshot: Arc<Snapshot>) {
        let rt = self.runtime();
        let now = snapshot.at_ns;
        let mut inner = self.inner.lock().await;
        let mut step = inner.lifecycle.step(&snapshot, now, &rt.options);
        inner.snapshot = Some(Arc::clone(&snapshot));
        if !step.fired.is_empty() {
            // The cause queries run without the lock: the API (and the UI
            // behind it) keeps answering while they do. Only this task
            // changes the lifecycle, so the alerts are still there after.
            let lookups = cause_lookups(&rt, &snapshot, &inner, &step);
            drop(inner);
            let found = self.find_causes(&rt, lookups, now).await;
            inner = self.inner.lock().await;
            apply_causes(&mut inner, &mut step, found);
        }
        let mut deleted = step.dropped.clone();
        for alert in &step.changed {
            route_into(&rt, &mut inner.dispatcher, alert, now);
            if alert.state == State::Resolved {
                if inner.dispatcher.holds(&alert.fingerprint) {
                    inner
                        .resolved
                        .insert(alert.fingerprint.clone(), alert.clone());
                } else {
                    deleted.push(alert.fingerprint.clone());
                }
            }
        }
        let saved: Vec<Alert> = step
            .changed
            .iter()
            .filter(|a| !deleted.contains(&a.fingerprint))
            .cloned()
            .collect();
        if let Err(e) = self.store.save_alerts(&saved, &deleted, &step.transitions) {
            tracing::error!(error = %e, "Saving alert states failed.");
        }
        for t in &step.transitions {
            tracing::info!(slo = %t.slo, from = %t.from, to = %t.to, alert = %t.fingerprint, summary = %t.summary, "Alert state changed.");
        }
        self.flush(&rt, &mut inner, now);
        self.scale(&rt, &mut inner, &snapshot, now);
    }

    /// Flushes groups whose timer is due; called by [`Alerting::run`] between
    /// SLO ticks.
    pub async fn flush_due(&self) {
        let rt = self.runtime();
        let now = self.clock.now_ns();
        let mut inner = self.inner.lock().await;
        self.flush(&rt, &mut inner, now);
    }

    fn flush(&self, rt: &Runtime, inner: &mut Inner, now: i64) {
        let due = inner.dispatcher.due(now);
        if due.is_empty() {
            return;
        }
        let suppressor = self.suppressor(rt, inner, now);
        let charts = Some(self.charts.as_ref());
        let out = flush_groups(rt, charts, &mut inner.dispatcher, &suppressor, due, now, |id| {
            self.store.nflog(&id.0, &id.1).map_err(|e| {
                tracing::error!(error = %e, "Reading the notification log failed; the group waits.");
            })
        })
        .into_iter()
        .map(|f| (f.notification, Some(f.nflog)))
        .collect();
        // Resolved alerts no group holds any more are done.
        let done: Vec<String> = inner
            .resolved
            .keys()
            .filter(|fp| !inner.dispatcher.holds(fp))
            .cloned()
            .collect();
        for fp in &done {
            inner.resolved.remove(fp);
        }
        self.enqueue(out);
        if !done.is_empty()
            && let Err(e) = self.store.save_alerts(&[], &done, &[])
        {
            tracing::error!(error = %e, "Deleting resolved alerts failed.");
        }
    }

    pub(crate) fn enqueue(&self, items: Vec<(Notification, Option<crate::store::NflogEntry>)>) {
        if items.is_empty() {
            return;
        }
        match self.store.enqueue(&items) {
            Ok(seqs) => self
                .deliverer
                .push(seqs.into_iter().zip(items.into_iter().map(|(n, _)| n))),
            Err(e) => {
                tracing::error!(error = %e, "Writing notifications to the outbox failed; they are not sent.")
            }
        }
    }

    /// Runs the timers of groups and the delivery engine until `stop`.
    pub async fn run(
        self: Arc<Self>,
        stop: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let (stop_delivery, stopped) = tokio::sync::oneshot::channel::<()>();
        let delivery = tokio::spawn(Arc::clone(&self.deliverer).run(async move {
            let _ = stopped.await;
        }));
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut prune = tokio::time::interval(Duration::from_secs(3600));
        let mut reports = tokio::time::interval(Duration::from_secs(60));
        reports.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = tick.tick() => self.flush_due().await,
                _ = reports.tick() => self.mail_due_reports().await,
                _ = prune.tick() => {
                    // Keep 14 days of deliveries, and 400 days of alert
                    // history (the incidents of quarterly and yearly
                    // reports).
                    const DAY: i64 = 86_400 * 1_000_000_000;
                    let now = self.clock.now_ns();
                    if let Err(e) = self.store.prune(now - 14 * DAY, now - 400 * DAY) {
                        tracing::warn!(error = %e, "Pruning the alerting database failed.");
                    }
                }
            }
        }
        let _ = stop_delivery.send(());
        let _ = delivery.await;
    }
}

/// Puts a changed alert into the groups of every route that takes it.
fn route_into(rt: &Runtime, dispatcher: &mut Dispatcher, alert: &Alert, now: i64) {
    if let Some(route) = &rt.route {
        for r in route.routes_for(&alert.labels) {
            dispatcher.insert(alert, r, timing(rt, &r.receiver), now);
        }
    }
}

/// Flushes the groups `due` at `now`: the notifications to send, each with
/// its notification log entry. `nflog` reads a group's last entry; a group
/// whose entry cannot be read waits for its next turn.
fn flush_groups(
    rt: &Runtime,
    charts: Option<&ChartLinks>,
    dispatcher: &mut Dispatcher,
    suppressor: &suppress::Suppressor,
    due: Vec<(String, String)>,
    now: i64,
    mut nflog: impl FnMut(&(String, String)) -> Result<Option<crate::store::NflogEntry>, ()>,
) -> Vec<crate::dispatch::Flush> {
    let mut out = Vec::new();
    for id in due {
        let Ok(last) = nflog(&id) else {
            continue;
        };
        let receiver = rt.receivers.get(&id.0);
        let send_resolved = receiver.is_none_or(|r| r.config.common.send_resolved);
        let resend = timing(rt, &id.0).resend_interval.unwrap_or(0);
        if let Some(mut f) = dispatcher.flush(
            &id,
            now,
            last,
            |a| suppressor.why(a).any(),
            send_resolved,
            &rt.options.external_url,
            resend,
        ) {
            if let Some(charts) = charts {
                add_chart_links(rt, charts, &mut f.notification, now);
            }
            out.push(f);
        }
    }
    out
}

/// Gives each alert of a notification its signed burn-rate chart link
/// (`burn_chart_url`), unless `chart_link_ttl` is 0.
fn add_chart_links(rt: &Runtime, charts: &ChartLinks, n: &mut Notification, now: i64) {
    let ttl = smolder_slo::model::duration_ns(rt.config.chart_link_ttl);
    if ttl == 0 || n.scaling.is_some() {
        return;
    }
    for a in &mut n.alerts {
        let req = ChartRequest::for_alert(a, now);
        let url = charts.url(&rt.options.external_url, &a.slo, &req, now + ttl);
        a.annotations.insert("burn_chart_url".to_string(), url);
    }
}

/// Key of an SLO instance: `slo{k=v,…}`.
pub fn instance_key(tenant: &Tenant, slo: &str, group: &BTreeMap<String, String>) -> InstanceKey {
    InstanceKey::new(tenant, slo, group)
}

//! The alerting stage as one object: after each SLO tick it steps the alert
//! lifecycle, looks for causes of new alerts, routes firing and resolved
//! alerts into groups, flushes due groups into the outbox and drives the
//! scaling targets; the [`Deliverer`] sends what the outbox holds.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::Serialize;
use smolder_common::clock::Clock;
use smolder_query::QueryEngine;
use smolder_slo::engine::Snapshot;
use smolder_slo::model::{InstanceKey, Severity};

use crate::alert::{
    Alert, Lifecycle, LifecycleOptions, State, Transition, group_label, set_cause_annotations,
};
use crate::config::{AlertingConfig, ConfigProblem, InhibitRule, ReceiverConfig, scaling_receiver};
use crate::deliver::Deliverer;
use crate::dispatch::{Dispatcher, ReceiverTiming};
use crate::matchers::Matchers;
use crate::notification::{Notification, new_id};
use crate::receivers::config::HttpUrl;
use crate::receivers::{self, Kind, Receiver};
use crate::route::CompiledRoute;
use crate::silence::{ActiveSilence, Recurring, Silence};
use crate::store::{ScalingState, Store, StoreError};

/// A compiled inhibition rule.
#[derive(Debug, Clone)]
struct Inhibit {
    source: Matchers,
    target: Matchers,
    equal: Vec<String>,
}

/// The configuration, compiled.
struct Runtime {
    config: AlertingConfig,
    route: Option<CompiledRoute>,
    inhibit: Vec<Inhibit>,
    maintenance: Vec<Recurring>,
    scaling: Vec<(crate::config::ScalingTarget, Matchers)>,
    receivers: HashMap<String, Arc<Receiver>>,
    options: LifecycleOptions,
}

/// Why an alert is not notified.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Suppression {
    /// Silences (and maintenance windows, `maintenance/<name>`) matching it.
    pub silenced_by: Vec<String>,
    /// Firing alerts that inhibit it.
    pub inhibited_by: Vec<String>,
}

impl Suppression {
    /// Whether it is suppressed.
    pub fn any(&self) -> bool {
        !self.silenced_by.is_empty() || !self.inhibited_by.is_empty()
    }
}

/// An active alert as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AlertStatus {
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// `pending`, `firing`, or `suppressed` (firing but silenced or
    /// inhibited).
    pub status: &'static str,
    /// Since when it is in its state (RFC 3339).
    pub since: String,
    /// Silences and inhibitions.
    pub suppressed: Suppression,
    /// Receivers its routes lead to.
    pub receivers: Vec<String>,
}

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

fn compile(
    config: &AlertingConfig,
    client: &reqwest::Client,
    default_external_url: &str,
) -> Result<Runtime, Vec<ConfigProblem>> {
    config.check()?;
    let problem = |field: &str, message: String| {
        vec![ConfigProblem {
            field: field.to_string(),
            message,
        }]
    };
    let route = config
        .route
        .as_ref()
        .map(CompiledRoute::compile)
        .transpose()
        .map_err(|e| problem("alerting.route", e))?;
    let default_rules = [InhibitRule {
        source_matchers: vec![r#"severity="page""#.to_string()],
        target_matchers: vec![r#"severity="ticket""#.to_string()],
        equal: vec!["slo".to_string(), "slo_group".to_string()],
    }];
    let inhibit = config
        .inhibit_rules
        .as_deref()
        .unwrap_or(&default_rules)
        .iter()
        .map(|r| {
            Ok(Inhibit {
                source: Matchers::parse(&r.source_matchers)?,
                target: Matchers::parse(&r.target_matchers)?,
                equal: r.equal.clone(),
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| problem("alerting.inhibit_rules", e))?;
    let maintenance = config
        .maintenance_windows
        .iter()
        .map(|w| {
            Recurring::from_config(w).map_err(|e| {
                problem(
                    &format!("alerting.maintenance_windows.{}", e.field),
                    e.message,
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut receivers = HashMap::new();
    for (i, r) in config.receivers.iter().enumerate() {
        let built = Receiver::new(r.clone(), &config.delivery, client.clone())
            .map_err(|e| problem(&format!("alerting.receivers[{i}]"), e))?;
        receivers.insert(r.name.clone(), Arc::new(built));
    }
    let mut scaling = Vec::new();
    for (i, t) in config.scaling.iter().enumerate() {
        let matchers = Matchers::parse(&t.matchers)
            .map_err(|e| problem(&format!("alerting.scaling[{i}].matchers"), e))?;
        let url =
            HttpUrl::new(&t.url).map_err(|e| problem(&format!("alerting.scaling[{i}].url"), e))?;
        let as_receiver = ReceiverConfig {
            name: scaling_receiver(&t.name),
            common: receivers::config::Common {
                headers: t.headers.clone(),
                max_concurrency: 1,
                ..Default::default()
            },
            kind: Kind::Webhook(receivers::webhook::Config {
                url,
                format: receivers::webhook::Format::Smolder,
                template: None,
                secret: t.secret.clone(),
            }),
        };
        let built = Receiver::new(as_receiver, &config.delivery, client.clone())
            .map_err(|e| problem(&format!("alerting.scaling[{i}]"), e))?;
        receivers.insert(scaling_receiver(&t.name), Arc::new(built));
        scaling.push((t.clone(), matchers));
    }
    Ok(Runtime {
        route,
        inhibit,
        maintenance,
        scaling,
        receivers,
        options: LifecycleOptions {
            keep_firing_for: config.keep_firing_for,
            external_url: config
                .external_url
                .clone()
                .unwrap_or_else(|| default_external_url.to_string()),
        },
        config: config.clone(),
    })
}

fn lock_read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(std::sync::PoisonError::into_inner)
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
        let runtime = compile(config, &client, &default_external_url).map_err(Error::Config)?;
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
        }))
    }

    /// Applies a new configuration, or refuses it (keeping the current one)
    /// with every problem and its field.
    pub fn reload(&self, config: &AlertingConfig) -> Result<(), Error> {
        let runtime =
            compile(config, &self.client, &self.default_external_url).map_err(Error::Config)?;
        self.deliverer
            .configure(runtime.receivers.clone(), config.delivery.clone());
        *self
            .runtime
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(runtime);
        tracing::info!("Alerting configuration reloaded.");
        Ok(())
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
        Arc::clone(&lock_read(&self.runtime))
    }

    /// Steps everything with a new SLO snapshot: alert states, causes,
    /// groups, due notifications, scaling.
    pub async fn observe(&self, snapshot: Arc<Snapshot>) {
        let rt = self.runtime();
        let now = self.clock.now_ns();
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
            if let Some(route) = &rt.route {
                for r in route.routes_for(&alert.labels) {
                    inner
                        .dispatcher
                        .insert(alert, r, timing(&rt, &r.receiver), now);
                }
            }
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

    /// Example traces and hints for each looked-up SLO instance; the
    /// queries run concurrently, each for 2 s at most.
    async fn find_causes(&self, rt: &Runtime, lookups: Vec<CauseLookup>, now: i64) -> FoundCauses {
        let examples = rt.config.examples;
        let lookups = lookups
            .into_iter()
            .map(|(def, group, window, fps)| async move {
                let started = std::time::Instant::now();
                let found = crate::cause::find(
                    &self.query,
                    &def,
                    &group,
                    window,
                    now,
                    examples,
                    Duration::from_secs(2),
                )
                .await;
                let found = match found {
                    Ok(f) => f,
                    Err(e) => {
                        tracing::warn!(slo = %def.id, error = %e, "Looking for causes failed; skipped.");
                        Default::default()
                    }
                };
                tracing::debug!(
                    slo = %def.id,
                    ms = started.elapsed().as_secs_f64() * 1e3,
                    examples = found.0.len(),
                    hints = found.1.len(),
                    "Looked for causes."
                );
                (fps, found)
            });
        futures::future::join_all(lookups).await
    }

    /// Flushes groups whose timer is due; called by [`Alerting::run`] between
    /// SLO ticks.
    pub async fn flush_due(&self) {
        let rt = self.runtime();
        let now = self.clock.now_ns();
        let mut inner = self.inner.lock().await;
        self.flush(&rt, &mut inner, now);
    }

    fn suppressor(&self, rt: &Runtime, inner: &Inner, now: i64) -> Suppressor {
        let now_utc = chrono::DateTime::from_timestamp_nanos(now);
        let mut silences: Vec<ActiveSilence> = inner
            .silences
            .iter()
            .filter(|s| s.status(now_utc) == "active")
            .filter_map(|s| ActiveSilence::new(s.id.clone(), &s.matchers))
            .collect();
        silences.extend(rt.maintenance.iter().filter_map(|m| m.active(now_utc)));
        let rules = rt
            .inhibit
            .iter()
            .map(|rule| {
                let mut sources = SourcesByEqual::new();
                for a in inner.lifecycle.active.values() {
                    if a.state == State::Firing && rule.source.matches(&a.labels) {
                        let key = rule
                            .equal
                            .iter()
                            .map(|l| a.labels.get(l).cloned())
                            .collect();
                        sources.entry(key).or_default().push(a.fingerprint.clone());
                    }
                }
                (rule.clone(), sources)
            })
            .collect();
        Suppressor { silences, rules }
    }

    fn flush(&self, rt: &Runtime, inner: &mut Inner, now: i64) {
        let due = inner.dispatcher.due(now);
        if due.is_empty() {
            return;
        }
        let suppressor = self.suppressor(rt, inner, now);
        let mut out = Vec::new();
        for id in due {
            let last = match self.store.nflog(&id.0, &id.1) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!(error = %e, "Reading the notification log failed; the group waits.");
                    continue;
                }
            };
            let receiver = rt.receivers.get(&id.0);
            let send_resolved = receiver.is_none_or(|r| r.config.common.send_resolved);
            let resend = timing(rt, &id.0).resend_interval.unwrap_or(0);
            if let Some(f) = inner.dispatcher.flush(
                &id,
                now,
                last,
                |a| suppressor.why(a).any(),
                send_resolved,
                &rt.options.external_url,
                resend,
            ) {
                out.push((f.notification, Some(f.nflog)));
            }
        }
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

    fn enqueue(&self, items: Vec<(Notification, Option<crate::store::NflogEntry>)>) {
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

    fn scale(&self, rt: &Runtime, inner: &mut Inner, snapshot: &Snapshot, now: i64) {
        if rt.scaling.is_empty() {
            return;
        }
        let mut out = Vec::new();
        for (target, matchers) in &rt.scaling {
            let severity = target
                .severity
                .as_deref()
                .map_or_else(Severity::page, Severity::from);
            for status in &snapshot.slos {
                let def = &status.definition;
                for instance in &status.instances {
                    let key = (target.name.clone(), instance_key(&def.id, &instance.group));
                    let firing = inner.lifecycle.active.values().find(|a| {
                        a.slo == def.id
                            && a.state == State::Firing
                            && a.labels
                                .get("severity")
                                .is_some_and(|s| s == severity.as_str())
                            && instance
                                .group
                                .iter()
                                .all(|(k, v)| a.labels.get(k) == Some(v))
                            && matchers.matches(&a.labels)
                    });
                    let state = inner.scaling.get(&key).cloned();
                    if firing.is_none() && !state.as_ref().is_some_and(|s| s.scaled_up) {
                        continue;
                    }
                    let (burn, window) = crate::scaling::deciding_burn_rate(instance, &severity);
                    let (next, request) = crate::scaling::step(
                        target,
                        &def.id,
                        &instance.group,
                        state.as_ref(),
                        firing,
                        burn,
                        window,
                        now,
                    );
                    if state.as_ref() != Some(&next) {
                        if let Err(e) = self.store.put_scaling(&key.0, &key.1.to_string(), &next) {
                            tracing::error!(error = %e, "Saving scaling state failed.");
                        }
                        inner.scaling.insert(key.clone(), next);
                    }
                    if let Some(req) = request {
                        tracing::info!(target = %target.name, slo = %def.id, action = %req.action, "Scaling request.");
                        let id = new_id(now);
                        out.push((
                            Notification {
                                thread: id.clone(),
                                id,
                                receiver: scaling_receiver(&target.name),
                                group_key: key.1.to_string(),
                                group_labels: instance.group.clone(),
                                status: req.action.clone(),
                                alerts: Vec::new(),
                                created_at: now,
                                external_url: rt.options.external_url.clone(),
                                resend_interval_ns: 0,
                                scaling: Some(req),
                            },
                            None,
                        ));
                    }
                }
            }
        }
        self.enqueue(out);
    }

    /// Active alerts by state (`pending`, `firing`, `suppressed`); `None`
    /// while an evaluation holds the state (a scrape does not wait for it).
    pub fn alert_counts(&self) -> Option<Vec<(&'static str, usize)>> {
        let mut counts = vec![("pending", 0), ("firing", 0), ("suppressed", 0)];
        let inner = self.inner.try_lock().ok()?;
        let rt = self.runtime();
        let suppressor = self.suppressor(&rt, &inner, self.clock.now_ns());
        for a in inner.lifecycle.active.values() {
            let i = match a.state {
                State::Pending => 0,
                _ if suppressor.why(a).any() => 2,
                _ => 1,
            };
            counts[i].1 += 1;
        }
        Some(counts)
    }

    /// Active alerts (pending and firing), most severe and oldest first.
    pub async fn alerts(&self) -> Vec<AlertStatus> {
        let rt = self.runtime();
        let now = self.clock.now_ns();
        let inner = self.inner.lock().await;
        let suppressor = self.suppressor(&rt, &inner, now);
        let mut out: Vec<AlertStatus> = inner
            .lifecycle
            .active
            .values()
            .map(|a| {
                let suppressed = suppressor.why(a);
                let status = match a.state {
                    State::Pending => "pending",
                    _ if suppressed.any() => "suppressed",
                    _ => "firing",
                };
                AlertStatus {
                    since: crate::render::rfc3339(a.fired_at.unwrap_or(a.active_since)),
                    status,
                    suppressed,
                    receivers: rt
                        .route
                        .as_ref()
                        .map(|r| {
                            r.routes_for(&a.labels)
                                .iter()
                                .map(|r| r.receiver.clone())
                                .collect()
                        })
                        .unwrap_or_default(),
                    alert: a.clone(),
                }
            })
            .collect();
        let rank = |s: &AlertStatus| match s.alert.labels.get("severity").map(String::as_str) {
            Some("page") => 0,
            Some("ticket") => 1,
            _ => 2,
        };
        out.sort_by(|a, b| {
            rank(a)
                .cmp(&rank(b))
                .then(a.alert.active_since.cmp(&b.alert.active_since))
                .then(a.alert.fingerprint.cmp(&b.alert.fingerprint))
        });
        out
    }

    /// State changes, newest first.
    pub fn history(&self, slo: Option<&str>, limit: usize) -> Result<Vec<Transition>, Error> {
        Ok(self.store.history(slo, limit)?)
    }

    /// Every silence, active first.
    pub async fn silences(&self) -> Vec<(Silence, &'static str)> {
        let now = chrono::DateTime::from_timestamp_nanos(self.clock.now_ns());
        let inner = self.inner.lock().await;
        let mut out: Vec<_> = inner
            .silences
            .iter()
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

    /// Creates a silence (or replaces the one with the same id).
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

    /// Expires a silence now.
    pub async fn expire_silence(&self, id: &str) -> Result<Silence, Error> {
        let now = chrono::DateTime::from_timestamp_nanos(self.clock.now_ns());
        let mut inner = self.inner.lock().await;
        let Some(s) = inner.silences.iter_mut().find(|s| s.id == id) else {
            return Err(Error::NotFound(format!("no silence {id:?}")));
        };
        if s.ends_at > now {
            s.ends_at = now.max(s.starts_at);
        }
        self.store.put_silence(s)?;
        Ok(s.clone())
    }

    /// Example bad trace ids and over-represented attribute values of an SLO
    /// instance over the last `window` (the SLO detail page asks for them
    /// whether or not an alert fires). `group` defaults to the worst group.
    pub async fn causes(
        &self,
        slo: &str,
        group: Option<BTreeMap<String, String>>,
        window: Duration,
    ) -> Result<(Vec<String>, Vec<crate::alert::Hint>), Error> {
        let snapshot = self
            .snapshot()
            .await
            .ok_or_else(|| Error::NotFound("no SLO evaluation yet".into()))?;
        let status = snapshot
            .slos
            .iter()
            .find(|s| s.definition.id == slo)
            .ok_or_else(|| Error::NotFound(format!("no SLO {slo:?}")))?;
        let group = match group {
            Some(g) => g,
            None => status
                .instances
                .first()
                .map(|i| i.group.clone())
                .unwrap_or_default(),
        };
        let examples = self.runtime().config.examples.max(1);
        let now = self.clock.now_ns();
        crate::cause::find(
            &self.query,
            &status.definition,
            &group,
            window,
            now,
            examples,
            Duration::from_secs(10),
        )
        .await
        .map_err(Error::Invalid)
    }

    /// The longest a silence may last.
    pub fn max_silence(&self) -> Duration {
        self.runtime().config.max_silence
    }

    /// The latest SLO snapshot seen.
    pub async fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.inner.lock().await.snapshot.clone()
    }

    /// Scaling state of every target for an SLO's instances.
    pub async fn scaling_state(&self, slo: &str) -> Vec<(String, InstanceKey, ScalingState)> {
        let inner = self.inner.lock().await;
        let mut out: Vec<_> = inner
            .scaling
            .iter()
            .filter(|((_, inst), _)| inst.slo() == slo)
            .map(|((t, i), s)| (t.clone(), i.clone(), s.clone()))
            .collect();
        out.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        out
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
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => break,
                _ = tick.tick() => self.flush_due().await,
                _ = prune.tick() => {
                    // Keep 14 days of deliveries and history.
                    let before = self.clock.now_ns() - 14 * 86_400 * 1_000_000_000;
                    if let Err(e) = self.store.prune(before) {
                        tracing::warn!(error = %e, "Pruning the alerting database failed.");
                    }
                }
            }
        }
        let _ = stop_delivery.send(());
        let _ = delivery.await;
    }
}

fn timing(rt: &Runtime, receiver: &str) -> ReceiverTiming {
    let resend = rt
        .receivers
        .get(receiver)
        .and_then(|r| match &r.config.kind {
            Kind::Alertmanager(c) => Some(c.resend_interval),
            _ => None,
        });
    ReceiverTiming {
        resend_interval: resend.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
    }
}

/// What a cause lookup found for its alerts: (fingerprints, (example trace
/// ids, hints)).
type FoundCauses = Vec<(Vec<String>, (Vec<String>, Vec<crate::alert::Hint>))>;

/// Firing sources of an inhibition rule by the values of its `equal` labels.
type SourcesByEqual = HashMap<Vec<Option<String>>, Vec<String>>;

/// One cause lookup: the SLO, the group, the window and the alerts it serves.
type CauseLookup = (
    Arc<smolder_slo::SloDefinition>,
    BTreeMap<String, String>,
    Duration,
    Vec<String>,
);

/// One lookup per SLO instance among the alerts that started firing, over
/// the shortest window of those alerts (none when examples are off).
fn cause_lookups(
    rt: &Runtime,
    snapshot: &Snapshot,
    inner: &Inner,
    step: &crate::alert::Step,
) -> Vec<CauseLookup> {
    if rt.config.examples == 0 {
        return Vec::new();
    }
    let mut instances: BTreeMap<String, CauseLookup> = BTreeMap::new();
    for fp in &step.fired {
        let Some(alert) = inner.lifecycle.active.get(fp) else {
            continue;
        };
        let Some(status) = snapshot.slos.iter().find(|s| s.definition.id == alert.slo) else {
            continue;
        };
        let group: BTreeMap<String, String> = status
            .definition
            .group_by
            .iter()
            .filter_map(|g| alert.labels.get(g).map(|v| (g.clone(), v.clone())))
            .collect();
        // The short window of the condition that fired.
        let window = status
            .definition
            .alert_windows
            .iter()
            .find(|w| alert.labels.get("condition") == Some(&w.name))
            .map_or(Duration::from_secs(300), |w| w.short);
        let key = format!("{}|{}", alert.slo, group_label(&group));
        let entry = instances
            .entry(key)
            .or_insert_with(|| (Arc::clone(&status.definition), group, window, Vec::new()));
        entry.2 = entry.2.min(window);
        entry.3.push(fp.clone());
    }
    instances.into_values().collect()
}

/// Puts what the lookups found on the alerts (and their changed copies).
fn apply_causes(inner: &mut Inner, step: &mut crate::alert::Step, found: FoundCauses) {
    for (fps, (ids, hints)) in found {
        for fp in fps {
            let Some(alert) = inner.lifecycle.active.get_mut(&fp) else {
                continue;
            };
            alert.examples.clone_from(&ids);
            alert.hints.clone_from(&hints);
            set_cause_annotations(alert);
            let updated = alert.clone();
            if let Some(c) = step.changed.iter_mut().find(|c| c.fingerprint == fp) {
                *c = updated;
            }
        }
    }
}

/// Key of an SLO instance: `slo{k=v,…}`.
pub fn instance_key(slo: &str, group: &BTreeMap<String, String>) -> InstanceKey {
    InstanceKey::new(slo, group)
}

struct Suppressor {
    silences: Vec<ActiveSilence>,
    /// Each inhibition rule with its firing sources, indexed by the values
    /// of the rule's `equal` labels: finding an alert's inhibitors is one
    /// lookup, not a pass over every firing alert (thousands at once in a
    /// large incident).
    rules: Vec<(Inhibit, SourcesByEqual)>,
}

impl Suppressor {
    fn why(&self, a: &Alert) -> Suppression {
        let silenced_by = self
            .silences
            .iter()
            .filter(|s| s.matches(&a.labels))
            .map(|s| s.id.clone())
            .collect();
        let mut inhibited_by: Vec<String> = Vec::new();
        for (rule, sources) in &self.rules {
            if !rule.target.matches(&a.labels) {
                continue;
            }
            let key: Vec<Option<String>> = rule
                .equal
                .iter()
                .map(|l| a.labels.get(l).cloned())
                .collect();
            for fp in sources.get(&key).into_iter().flatten() {
                if *fp != a.fingerprint && !inhibited_by.contains(fp) {
                    inhibited_by.push(fp.clone());
                }
            }
        }
        Suppression {
            silenced_by,
            inhibited_by,
        }
    }
}

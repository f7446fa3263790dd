//! The `[alerting]` configuration compiled for the other parts: the routing
//! tree, inhibition rules, maintenance windows, scaling targets and ready
//! receivers. A reload compiles a new one and swaps it in whole.

use std::collections::HashMap;
use std::sync::Arc;

use crate::alert::LifecycleOptions;
use crate::config::{AlertingConfig, ConfigProblem, InhibitRule, ReceiverConfig, scaling_receiver};
use crate::dispatch::ReceiverTiming;
use crate::matchers::Matchers;
use crate::receivers::config::HttpUrl;
use crate::receivers::{self, Kind, Receiver};
use crate::route::CompiledRoute;
use crate::silence::Recurring;

/// A compiled inhibition rule.
#[derive(Debug, Clone)]
pub(super) struct Inhibit {
    pub(super) source: Matchers,
    pub(super) target: Matchers,
    pub(super) equal: Vec<String>,
}

/// The configuration, compiled.
pub(super) struct Runtime {
    pub(super) config: AlertingConfig,
    pub(super) route: Option<CompiledRoute>,
    pub(super) inhibit: Vec<Inhibit>,
    pub(super) maintenance: Vec<Recurring>,
    pub(super) scaling: Vec<(crate::config::ScalingTarget, Matchers)>,
    pub(super) receivers: HashMap<String, Arc<Receiver>>,
    pub(super) options: LifecycleOptions,
}

pub(super) fn compile(
    config: &AlertingConfig,
    client: &reqwest::Client,
    default_external_url: &str,
    charts: &Arc<crate::chart::ChartLinks>,
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
            .map_err(|e| problem(&format!("alerting.receivers[{i}]"), e))?
            .with_charts(Arc::clone(charts));
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
        options: config.lifecycle_options(default_external_url),
        config: config.clone(),
    })
}

/// How a receiver times its notifications.
pub(super) fn timing(rt: &Runtime, receiver: &str) -> ReceiverTiming {
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

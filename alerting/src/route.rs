//! The routing tree, with Alertmanager's semantics: an alert enters at the
//! root; at each node, the children are tried in order and every matching
//! child takes the alert, stopping after the first unless it says
//! `continue`; when no child matches, the node itself takes it.
//!
//! One rule more, for tenants: an alert of a tenant other than the default
//! one (it carries a `tenant` label) is only taken by a route that — itself
//! or a route above it — has a matcher on `tenant`. Routes written without
//! tenants in mind (every route before they existed) never send a tenant's
//! alerts to the operator's receivers, whatever labels the tenant's SLOs
//! give them; routing a tenant's alerts is said explicitly.

use std::time::Duration;

use crate::alert::{Labels, TENANT_LABEL};
use crate::config::Route;
use crate::matchers::Matchers;

/// How a route groups alerts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    /// By these labels.
    Labels(Vec<String>),
    /// By every label (`group_by = ["..."]`): one alert per group.
    All,
}

/// A compiled route.
#[derive(Debug, Clone)]
pub struct CompiledRoute {
    /// Position in the tree (`0`, `0.1`, `0.1.0`), part of group keys.
    pub path: String,
    /// The receiver.
    pub receiver: String,
    matchers: Matchers,
    continue_: bool,
    /// Grouping labels.
    pub group_by: GroupBy,
    /// Wait before a new group's first notification.
    pub group_wait: Duration,
    /// Wait between notifications of a group.
    pub group_interval: Duration,
    /// Re-send an unchanged firing group after this long.
    pub repeat_interval: Duration,
    children: Vec<CompiledRoute>,
}

impl CompiledRoute {
    /// Compiles a validated routing tree.
    pub fn compile(route: &Route) -> Result<Self, String> {
        let root = Route {
            receiver: route.receiver.clone(),
            group_by: Some(
                route
                    .group_by
                    .clone()
                    .unwrap_or_else(|| Route::DEFAULT_GROUP_BY.map(String::from).to_vec()),
            ),
            group_wait: Some(route.group_wait.unwrap_or(Duration::ZERO)),
            group_interval: Some(route.group_interval.unwrap_or(Duration::from_secs(30))),
            repeat_interval: Some(
                route
                    .repeat_interval
                    .unwrap_or(Duration::from_secs(4 * 3600)),
            ),
            ..route.clone()
        };
        Self::compile_node(&root, None, "0".to_string())
    }

    fn compile_node(
        route: &Route,
        parent: Option<&CompiledRoute>,
        path: String,
    ) -> Result<Self, String> {
        let inherit = |own: Option<Duration>, from: fn(&CompiledRoute) -> Duration| {
            own.or_else(|| parent.map(from)).unwrap_or_default()
        };
        let group_by = match (&route.group_by, parent) {
            (Some(labels), _) if labels.iter().any(|l| l == "...") => GroupBy::All,
            (Some(labels), _) => GroupBy::Labels(labels.clone()),
            (None, Some(p)) => p.group_by.clone(),
            (None, None) => GroupBy::Labels(Vec::new()),
        };
        let mut node = Self {
            receiver: route
                .receiver
                .clone()
                .or_else(|| parent.map(|p| p.receiver.clone()))
                .ok_or_else(|| format!("route {path} has no receiver"))?,
            matchers: Matchers::parse(&route.matchers)?,
            continue_: route.continue_,
            group_by,
            group_wait: inherit(route.group_wait, |p| p.group_wait),
            group_interval: inherit(route.group_interval, |p| p.group_interval),
            repeat_interval: inherit(route.repeat_interval, |p| p.repeat_interval),
            children: Vec::new(),
            path: path.clone(),
        };
        let mut children = Vec::with_capacity(route.routes.len());
        for (i, child) in route.routes.iter().enumerate() {
            children.push(Self::compile_node(
                child,
                Some(&node),
                format!("{path}.{i}"),
            )?);
        }
        node.children = children;
        Ok(node)
    }

    /// The routes that take an alert with these labels.
    pub fn routes_for<'a>(&'a self, labels: &Labels) -> Vec<&'a CompiledRoute> {
        self.taking(labels, labels.contains_key(TENANT_LABEL), false)
    }

    /// `foreign`: the alert is another tenant's; `named`: a route above
    /// matches on `tenant`.
    fn taking<'a>(&'a self, labels: &Labels, foreign: bool, named: bool) -> Vec<&'a CompiledRoute> {
        if !self.matchers.matches(labels) {
            return Vec::new();
        }
        let named = named || self.matchers.names(TENANT_LABEL);
        let mut all = Vec::new();
        for child in &self.children {
            let taken = child.taking(labels, foreign, named);
            let matched = !taken.is_empty();
            all.extend(taken);
            if matched && !child.continue_ {
                break;
            }
        }
        if all.is_empty() && (named || !foreign) {
            all.push(self);
        }
        all
    }

    /// The grouping labels of an alert, and the group key
    /// (`route-path:{labels}`). The `tenant` label is always one of them:
    /// a notification holds one tenant's alerts, whatever `group_by` says.
    pub fn group_of(&self, labels: &Labels) -> (Labels, String) {
        let mut group: Labels = match &self.group_by {
            GroupBy::All => labels.clone(),
            GroupBy::Labels(names) => names
                .iter()
                .filter_map(|n| labels.get(n).map(|v| (n.clone(), v.clone())))
                .collect(),
        };
        if let Some(tenant) = labels.get(TENANT_LABEL) {
            group.insert(TENANT_LABEL.to_string(), tenant.clone());
        }
        let text = group
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect::<Vec<_>>()
            .join(",");
        let key = format!("{}:{{{text}}}", self.path);
        (group, key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn alertmanager_routing_semantics() {
        let cfg: crate::config::AlertingConfig = toml::from_str(
            r#"
            [route]
            receiver = "default"
            group_wait = "5s"
            [[route.routes]]
            matchers = ['severity="page"']
            receiver = "pager"
            continue = true
            group_by = ["slo"]
            [[route.routes]]
            matchers = ['service="checkout"']
            receiver = "checkout-team"
            [[route.routes.routes]]
            matchers = ['severity="ticket"']
            receiver = "checkout-tickets"
            [[route.routes]]
            matchers = ['service=~"check.*"']
            receiver = "never"
            "#,
        )
        .unwrap();
        let root = CompiledRoute::compile(cfg.route.as_ref().unwrap()).unwrap();
        let names = |l: &Labels| {
            root.routes_for(l)
                .iter()
                .map(|r| r.receiver.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            names(&labels(&[("severity", "page"), ("service", "checkout")])),
            ["pager", "checkout-team"]
        );
        assert_eq!(
            names(&labels(&[("severity", "ticket"), ("service", "checkout")])),
            ["checkout-tickets"]
        );
        assert_eq!(
            names(&labels(&[("severity", "ticket"), ("service", "cart")])),
            ["default"]
        );
        let page = root.routes_for(&labels(&[
            ("severity", "page"),
            ("slo", "a"),
            ("slo_group", "x"),
        ]));
        assert_eq!(page[0].group_wait, Duration::from_secs(5), "inherited");
        let (group, key) = page[0].group_of(&labels(&[
            ("severity", "page"),
            ("slo", "a"),
            ("slo_group", "x"),
        ]));
        assert_eq!(group, labels(&[("slo", "a")]));
        assert_eq!(key, "0.0:{slo=\"a\"}");
    }

    #[test]
    fn another_tenants_alerts_only_take_routes_that_name_the_tenant() {
        let cfg: crate::config::AlertingConfig = toml::from_str(
            r#"
            [route]
            receiver = "operator"
            [[route.routes]]
            matchers = ['service="checkout"']
            receiver = "checkout-team"
            [[route.routes]]
            matchers = ['tenant=~"acme|globex"']
            receiver = "tenants"
            [[route.routes.routes]]
            matchers = ['tenant="acme"']
            receiver = "acme"
            "#,
        )
        .unwrap();
        let root = CompiledRoute::compile(cfg.route.as_ref().unwrap()).unwrap();
        let names = |l: &Labels| -> Vec<String> {
            root.routes_for(l)
                .iter()
                .map(|r| r.receiver.clone())
                .collect()
        };
        // The default tenant's alerts route as before.
        assert_eq!(
            names(&labels(&[("service", "checkout")])),
            ["checkout-team"]
        );
        assert_eq!(names(&labels(&[("service", "cart")])), ["operator"]);
        // A tenant's alert labelled like the operator's is not the
        // operator's: only routes naming the tenant take it.
        assert_eq!(
            names(&labels(&[("service", "checkout"), ("tenant", "acme")])),
            ["acme"]
        );
        assert_eq!(
            names(&labels(&[("service", "checkout"), ("tenant", "globex")])),
            ["tenants"]
        );
        assert!(names(&labels(&[("service", "checkout"), ("tenant", "initech")])).is_empty());
    }
}

//! The alerting stage of smolder.
//!
//! After each SLO evaluation, [`manager::Alerting`] turns the SLOs' alert
//! conditions into [`alert`]s (pending → firing → resolved, with
//! `keep_firing_for` against flapping), adds example traces and the
//! attribute values over-represented among bad events ([`cause`]), routes
//! them through the routing tree ([`route`]) into aggregation groups
//! ([`dispatch`]) with inhibition and [`silence`]s, and writes each
//! notification to the durable outbox ([`store`]) before the [`deliver`]y
//! engine sends it to its [`receivers`] with retries. [`scaling`] drives
//! autoscaler webhooks with hysteresis; [`chart`] draws the burn-rate charts
//! notifications carry; [`api`] serves alerts, history, deliveries,
//! silences, scaling state, charts and SLO [`report`]s.

pub mod alert;
pub mod api;
pub mod backtest;
mod cause;
pub mod chart;
pub mod config;
pub mod deliver;
pub mod dispatch;
pub mod manager;
mod matchers;
pub mod metrics;
pub mod notification;
pub mod receivers;
pub mod render;
pub mod report;
pub mod route;
mod scaling;
mod sign;
mod silence;
pub mod store;

pub use config::AlertingConfig;
pub use manager::{Alerting, Error};

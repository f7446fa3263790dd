//! The SLO engine of smolder.
//!
//! SLOs are written in OpenSLO v1 (or imported from Sloth) — [`spec`] turns
//! them into [`model::SloDefinition`]s. The [`engine::SloEngine`] is the entry
//! point: every tick it asks DataFusion for the good and total events of each
//! SLO per bucket (one minute by default) since the last tick, keeps them in
//! [`rollup`] rings (stored in SQLite by [`persist`], so a restart does not
//! rescan history), and [`eval`]uates SLIs, error budgets, burn rates and the
//! multi-window alert conditions from them, exactly, for any window.
//! [`api`] serves the results over HTTP, [`table`] as the SQL table
//! `slo_rollups`, and [`metrics`] as Prometheus gauges.

pub mod api;
mod calendar;
mod config;
pub mod engine;
pub mod eval;
pub mod exclusion;
pub mod metrics;
pub mod model;
pub mod persist;
pub mod rollup;
mod rows;
pub mod spec;
pub mod sql;
pub mod table;
pub mod tenants;

pub use config::SloConfig;
pub use engine::{EngineOptions, PutError, SloEngine, WatchedWindows};
pub use model::SloDefinition;
pub use tenants::{Databases, SloEngines};

/// Errors of the SLO engine.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A definition or the SLO directory is not usable.
    #[error("{0}")]
    Config(String),
    /// A rollup query failed (DataFusion's message).
    #[error("rollup query: {0}")]
    Query(String),
    /// The rollup database failed.
    #[error("SLO storage: {0}")]
    Storage(String),
    /// The request conflicts with how the SLO is managed.
    #[error("{0}")]
    Conflict(String),
    /// The SLO's rollups do not fit the process's memory budget.
    #[error("{0}")]
    Resources(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

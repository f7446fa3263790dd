//! Several smolder processes sharing one bucket: their roles, and how a
//! querier sees every acknowledged row exactly once.
//!
//! One binary does everything; `[cluster] roles` picks what a process does
//! ([`Role`]): *ingest* (the OTLP receivers, a write-ahead log and buffer of
//! its own, flushes to the bucket under its writer id), *query* (SQL, the
//! searches, the UI), *compact* (compaction, retention and the sweep of
//! unlisted files, by whichever compactor holds the lease in the bucket)
//! and *evaluate* (the SLO engine and alerting). All four in one process is
//! the single-node product.
//!
//! # Each row once
//!
//! A row an ingester acknowledged is in exactly one of two places: its
//! buffer, or a file the manifest lists — and the manifest records, per
//! writer, the last log record its files hold (`storage::catalog`). A
//! querier takes its manifest's files *and* those positions in one
//! snapshot, then asks every ingester over Arrow Flight ([`flight`]) for
//! its buffered rows after its position in that manifest. The ingester
//! answers from its buffer under the same lock its flush commits under; if
//! it has flushed past that position, the rows are no longer in its buffer
//! but in files the querier's manifest does not list yet, so it refuses
//! ("stale"), and the querier reads the manifest again and asks again.
//! Nothing is counted twice (buffer rows after the position are in no
//! listed file) and nothing is missed (rows up to it are in listed files).
//!
//! The query's projection and filters go with the request: the ingester
//! sends only the columns read and, of its rows, only those the filters it
//! can evaluate keep (the filters travel as SQL text; the querier applies
//! every filter again on what it gets).
//!
//! An ingester that does not answer (down, restarting) is reported: the
//! query answers with what the bucket and the other ingesters hold, and a
//! warning names the ingester whose unflushed rows are missing.

pub mod flight;
pub mod ingesters;

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use smolder_common::secret::Secret;

/// What a process does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// OTLP receivers, write-ahead log, buffer, flushes to the bucket.
    Ingest,
    /// The SQL API, searches and the web UI.
    Query,
    /// Compaction, retention and the sweep, while holding the lease.
    Compact,
    /// The SLO engine and alerting.
    Evaluate,
}

impl Role {
    /// Every role, as one process alone runs.
    pub const ALL: [Self; 4] = [Self::Ingest, Self::Query, Self::Compact, Self::Evaluate];

    /// The role's name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Query => "query",
            Self::Compact => "compact",
            Self::Evaluate => "evaluate",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

smolder_common::config_section! {
    /// Several processes sharing one bucket (storage.url): what this one
    /// does and how it finds the ingesters. The defaults are one process
    /// doing everything.
    pub struct ClusterConfig {
        /// What this process does: any of "ingest" (OTLP receivers, log,
        /// buffer, flushes), "query" (SQL API, searches, UI), "compact"
        /// (compaction and retention; one process at a time holds the
        /// lease) and "evaluate" (SLO engine and alerting).
        pub roles: Vec<Role> = Role::ALL.to_vec(),
        /// An ingester's Arrow Flight listener, from which queriers and
        /// evaluators read its rows not yet flushed: ADDR (port 0 picks a
        /// free port, printed as `listening flight=ADDR`); empty for none.
        pub flight_addr: String = String::new(),
        /// The ingesters' Flight addresses (host:port) a querier or
        /// evaluator asks for their unflushed rows; a name that resolves to
        /// several addresses (a Kubernetes headless service) counts each.
        pub ingesters: Vec<String> = Vec::new(),
        /// Shared secret the queriers send and the ingesters' Flight
        /// listeners require ({ file = … } or { env = … } keep it out of the
        /// file). Required when tokens are (server.auth).
        pub secret: Option<Secret> = None,
        /// CA certificate (PEM) of the ingesters' Flight listeners when they
        /// serve TLS ([tls] cert on the ingesters): queriers then connect
        /// with TLS and check the ingesters' names against it.
        pub ingester_ca: Option<PathBuf> = None,
        /// How long a querier waits for an ingester's rows before it answers
        /// without them (and says so).
        #[serde(with = "humantime_serde")]
        pub ingester_timeout: Duration = Duration::from_secs(10),
        /// How long the compactor's lease lasts without being renewed; a
        /// second compactor takes over this long after the first stops.
        #[serde(with = "humantime_serde")]
        pub lease_ttl: Duration = Duration::from_secs(15),
        /// How often an evaluator on a bucket copies its SLO and alerting
        /// databases to it (state/), from where an evaluator starting on an
        /// empty data directory takes them; also at a clean stop.
        #[serde(with = "humantime_serde")]
        pub state_interval: Duration = Duration::from_secs(60),
    }
    validate(self, problems) {
        problems.check(!self.roles.is_empty(), "roles", "must name at least one role");
        let mut roles = self.roles.clone();
        roles.sort();
        roles.dedup();
        problems.check(roles.len() == self.roles.len(), "roles", "names a role twice");
        if !self.flight_addr.is_empty() {
            problems.check(
                self.flight_addr.parse::<std::net::SocketAddr>().is_ok(),
                "flight_addr",
                "must be an address such as 0.0.0.0:8815",
            );
            problems.check(
                self.has(Role::Ingest),
                "flight_addr",
                "serves an ingester's rows: the ingest role is needed",
            );
        }
        for (i, entry) in self.ingesters.iter().enumerate() {
            problems.check(
                ingesters::split_host_port(entry).is_some(),
                &format!("ingesters[{i}]"),
                "must be host:port",
            );
        }
        problems.check(
            self.ingesters.is_empty() || self.has(Role::Query) || self.has(Role::Evaluate),
            "ingesters",
            "are read by queriers and evaluators: the query or evaluate role is needed",
        );
        problems.check(
            self.lease_ttl >= Duration::from_secs(1),
            "lease_ttl",
            "must be at least 1s",
        );
        problems.check(
            !self.ingester_timeout.is_zero(),
            "ingester_timeout",
            "must be positive",
        );
        problems.check(
            self.state_interval >= Duration::from_secs(1),
            "state_interval",
            "must be at least 1s",
        );
    }
}

impl ClusterConfig {
    /// Whether this process has `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The Flight listener's address, if this process serves one.
    pub fn flight_addr(&self) -> Option<std::net::SocketAddr> {
        self.flight_addr.parse().ok()
    }

    /// Whether this process has every role (one process alone).
    pub fn alone(&self) -> bool {
        Role::ALL.iter().all(|r| self.has(*r))
    }

    /// The roles as text (`ingest,query`).
    pub fn roles_text(&self) -> String {
        self.roles
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(",")
    }
}

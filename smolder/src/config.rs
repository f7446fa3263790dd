//! Configuration of `smolder serve` and `smolder demo`: the crates' sections
//! put together and layered.
//!
//! Each crate declares its section once (`smolder_common::config`): the
//! option's documentation, type and default on one field. This module only
//! lists the sections ([`SECTIONS`]) and layers, from weakest to strongest:
//!
//! 1. the defaults ([`Config::default`]);
//! 2. the TOML file given with `--config`;
//! 3. environment variables and
//! 4. flags: every option of every section (`[alerting]` aside, whose
//!    structure does not fit a flag) gets a flag and an environment variable
//!    named from its key — `slo.interval` is `--slo-interval` and
//!    `SMOLDER_SLO_INTERVAL` — derived here, not declared.
//!
//! Values from the environment and flags are turned into the type of the
//! option's default and then read by the same serde code as the file, so an
//! option parses the same way wherever it comes from and a bad value is named
//! by its key and its source. Then every section is validated, all problems
//! reported at once. `smolder config defaults` prints the documented defaults
//! (`smolder.example.toml` is that output; a test keeps them equal) and
//! `smolder config check FILE` validates a file without starting anything.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context as _;
use bytesize::ByteSize;
use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Args};
use serde::{Deserialize, Serialize};
use smolder_alerting::AlertingConfig;
use smolder_alerting::config::DeliveryConfig;
use smolder_cluster::ClusterConfig;
use smolder_common::config::{Field, Problem, Problems, Section};
use smolder_ingest::IngestConfig;
use smolder_query::QueryConfig;
use smolder_slo::SloConfig;
use smolder_storage::{RetentionConfig, StorageConfig, WalConfig};

/// How log lines are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

smolder_common::config_section! {
    /// Listener addresses. Port 0 picks a free port; the address taken is
    /// printed as `listening NAME=ADDR`.
    pub(crate) struct ListenConfig {
        /// OTLP/gRPC receiver.
        pub(crate) otlp_grpc: SocketAddr = SocketAddr::from(([0, 0, 0, 0], 4317)),
        /// OTLP/HTTP receiver, protobuf and JSON.
        pub(crate) otlp_http: SocketAddr = SocketAddr::from(([0, 0, 0, 0], 4318)),
        /// HTTP API and web UI: /api/v1/…, /metrics, /healthz, /readyz.
        pub(crate) http: SocketAddr = SocketAddr::from(([127, 0, 0, 1], 8080)),
    }
    validate(self, problems) {}
}

smolder_common::config_section! {
    /// Limits of the whole server.
    pub(crate) struct ServerConfig {
        /// Memory queries, OTLP requests (by their decoded size, and their
        /// bodies as they arrive) and SLO rollups may hold together. Beyond it
        /// requests get 503 / UNAVAILABLE, queries "resources exhausted", an
        /// SLO an error: never an out-of-memory crash. The in-memory buffer
        /// (ingest.buffer_limit), caches with caps of their own and the binary
        /// come on top.
        pub(crate) memory_budget: ByteSize = ByteSize::gib(2),
        /// Connections each listener keeps open at most; more are closed as
        /// they arrive.
        pub(crate) max_connections: usize = 4096,
        /// A connection with nothing read or written for this long is closed;
        /// longer than query.timeout + 30s.
        #[serde(with = "humantime_serde")]
        pub(crate) idle_timeout: Duration = Duration::from_secs(120),
        /// Time a client has to send a request's headers (HTTP/1).
        #[serde(with = "humantime_serde")]
        pub(crate) header_timeout: Duration = Duration::from_secs(10),
        /// Concurrent HTTP/2 streams per connection (gRPC calls in flight).
        pub(crate) max_streams: u32 = 256,
        /// Whether requests need a token (README, "Authentication"): `auto`
        /// (required unless every listener is on loopback), `required` or
        /// `disabled` (logged as a warning).
        pub(crate) auth: crate::auth::AuthMode = crate::auth::AuthMode::Auto,
        /// Names the API and UI answer to besides IP addresses, localhost and
        /// the host of alerting.external_url (against DNS rebinding); `*`
        /// answers to any name.
        pub(crate) allowed_hosts: Vec<String> = Vec::new(),
        /// Origins (`https://grafana.example.com`) whose pages may call the
        /// API from a browser (CORS); none by default.
        pub(crate) cors_origins: Vec<String> = Vec::new(),
    }
    validate(self, problems) {
        problems.check(
            (1..=1 << 20).contains(&self.max_connections),
            "max_connections",
            "must be between 1 and 1048576",
        );
        problems.check(!self.header_timeout.is_zero(), "header_timeout", "must be positive");
        problems.check(self.max_streams > 0, "max_streams", "must be positive");
        for (i, origin) in self.cors_origins.iter().enumerate() {
            let ok = reqwest::Url::parse(origin).is_ok_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.path() == "/"
                    && !origin.ends_with('/')
            });
            problems.check(
                ok,
                &format!("cors_origins[{i}]"),
                "must be an origin: scheme://host[:port], no path",
            );
        }
    }
}

smolder_common::config_section! {
    /// Logging. The level comes from RUST_LOG (default: info).
    pub(crate) struct LogConfig {
        /// "text" or "json".
        pub(crate) format: LogFormat = LogFormat::Text,
    }
    validate(self, problems) {}
}

smolder_common::config_section! {
    /// smolder's configuration.
    pub(crate) struct Config {
        /// Data directory; holds the write-ahead log in wal/ and the Parquet
        /// files with their manifest in parquet/.
        pub(crate) data_dir: PathBuf = PathBuf::from("smolder-data"),
        /// `[listen]`.
        pub(crate) listen: ListenConfig = ListenConfig::default(),
        /// `[server]`.
        pub(crate) server: ServerConfig = ServerConfig::default(),
        /// `[tls]`.
        pub(crate) tls: crate::tls::TlsConfig = crate::tls::TlsConfig::default(),
        /// `[oidc]`: signing in to the web UI.
        pub(crate) oidc: crate::auth::oidc::OidcConfig = crate::auth::oidc::OidcConfig::default(),
        /// `[ingest]`.
        pub(crate) ingest: IngestConfig = IngestConfig::default(),
        /// `[wal]`.
        pub(crate) wal: WalConfig = WalConfig::default(),
        /// `[storage]`.
        pub(crate) storage: StorageConfig = StorageConfig::default(),
        /// `[retention]`.
        pub(crate) retention: RetentionConfig = RetentionConfig::default(),
        /// `[query]`.
        pub(crate) query: QueryConfig = QueryConfig::default(),
        /// `[log]`.
        pub(crate) log: LogConfig = LogConfig::default(),
        /// `[slo]`.
        pub(crate) slo: SloConfig = SloConfig::default(),
        /// `[cluster]`: roles, and the ingesters a querier reads from.
        pub(crate) cluster: ClusterConfig = ClusterConfig::default(),
        /// `[alerting]`: receivers, routes, inhibition, maintenance windows,
        /// scaling targets, delivery. Reloaded on SIGHUP and `POST /-/reload`.
        pub(crate) alerting: AlertingConfig = AlertingConfig::default(),
    }
    validate(self, problems) {
        section(&self.listen, "listen", problems);
        section(&self.server, "server", problems);
        section(&self.tls, "tls", problems);
        section(&self.oidc, "oidc", problems);
        section(&self.ingest, "ingest", problems);
        section(&self.wal, "wal", problems);
        section(&self.storage, "storage", problems);
        section(&self.retention, "retention", problems);
        section(&self.query, "query", problems);
        section(&self.log, "log", problems);
        section(&self.slo, "slo", problems);
        section(&self.cluster, "cluster", problems);
        section(&self.alerting, "alerting", problems);
        // Relations between sections.
        problems.check(
            self.server.memory_budget >= self.ingest.max_inflight_bytes,
            "server.memory_budget",
            format!(
                "must be at least ingest.max_inflight_bytes ({})",
                self.ingest.max_inflight_bytes
            ),
        );
        // Processes with some of the roles share their files with others:
        // only an object store's conditional puts make that safe.
        problems.check(
            self.cluster.alone()
                || smolder_storage::StorageUrl::parse(&self.storage.url, &self.data_dir)
                    .map_or(true, |u| !u.is_local()),
            "cluster.roles",
            "some roles only (several processes) need the files in an object store: set storage.url to s3://, gs:// or az://",
        );
        problems.check(
            self.cluster.secret.is_some()
                || self.server.auth == crate::auth::AuthMode::Disabled
                || self.cluster.flight_addr().is_none_or(|a| a.ip().is_loopback()),
            "cluster.secret",
            "must be set: the Flight listener serves every tenant's unflushed rows beyond loopback",
        );
        problems.check(
            self.server.idle_timeout > self.query.timeout + Duration::from_secs(30),
            "server.idle_timeout",
            format!(
                "must be longer than query.timeout + 30s ({}), the longest an API request may take",
                humantime::format_duration(self.query.timeout + Duration::from_secs(30))
            ),
        );
    }
}

fn section<S: Section>(section: &S, key: &str, problems: &mut Problems) {
    let mut found = Problems::new(key);
    section.validate(&mut found);
    problems.extend(found.into_vec());
}

/// A section of the file as the layering and `config defaults` see it.
#[derive(Debug, Clone, Copy)]
struct SectionInfo {
    /// Key in the file; empty for the top level.
    key: &'static str,
    doc: &'static [&'static str],
    fields: &'static [Field],
    /// Flag name of an option: `{}` is the option's key with dashes. Kept to
    /// the names flags had before the sections were declared by the crates.
    /// `None`: the section is set in the file only.
    flag: Option<&'static str>,
}

const fn info<S: Section>(key: &'static str, flag: Option<&'static str>) -> SectionInfo {
    SectionInfo {
        key,
        doc: S::DOC,
        fields: S::FIELDS,
        flag,
    }
}

/// The sections, in the order of the file. (`[alerting]` is a tree of routes
/// and lists of receivers: file only.)
const SECTIONS: &[SectionInfo] = &[
    info::<Config>("", Some("{}")),
    info::<ListenConfig>("listen", Some("{}-addr")),
    info::<ServerConfig>("server", Some("{}")),
    info::<crate::tls::TlsConfig>("tls", Some("tls-{}")),
    info::<crate::auth::oidc::OidcConfig>("oidc", Some("oidc-{}")),
    info::<IngestConfig>("ingest", Some("{}")),
    info::<WalConfig>("wal", Some("wal-{}")),
    info::<StorageConfig>("storage", Some("{}")),
    info::<RetentionConfig>("retention", Some("retention-{}")),
    info::<QueryConfig>("query", Some("query-{}")),
    info::<LogConfig>("log", Some("log-{}")),
    info::<SloConfig>("slo", Some("slo-{}")),
    info::<ClusterConfig>("cluster", Some("{}")),
    info::<AlertingConfig>("alerting", None),
    info::<DeliveryConfig>("alerting.delivery", None),
];

/// The flag of `field` in the section `key` whose flags follow `pattern`;
/// a few fields have a flag of their own (`[storage] url` would be a bare
/// `--url`).
fn flag_name(key: &str, pattern: &str, field: &str) -> String {
    match (key, field) {
        ("storage", "url") => "storage-url".to_string(),
        ("cluster", "secret") => "cluster-secret".to_string(),
        _ => pattern.replace("{}", &field.replace('_', "-")),
    }
}

/// One option as flags and the environment see it.
#[derive(Debug)]
struct Opt {
    /// `slo.interval`.
    key: String,
    /// `slo-interval`.
    flag: String,
    /// `SMOLDER_SLO_INTERVAL`.
    env: String,
    help: String,
    value_name: &'static str,
    /// The default, which gives the type a flag's text is read as.
    default: Option<toml::Value>,
}

/// Every option that takes a flag.
static OPTIONS: LazyLock<Vec<Opt>> = LazyLock::new(|| {
    let defaults = default_table();
    let mut options = Vec::new();
    for section in SECTIONS {
        let Some(pattern) = section.flag else {
            continue;
        };
        let table = section_table(&defaults, section.key);
        for field in section.fields {
            let default = table.get(field.name).cloned();
            if matches!(default, Some(toml::Value::Table(_))) {
                continue; // a section, listed on its own
            }
            let flag = flag_name(section.key, pattern, field.name);
            let env = format!("SMOLDER_{}", flag.to_uppercase().replace('-', "_"));
            let key = if section.key.is_empty() {
                field.name.to_string()
            } else {
                format!("{}.{}", section.key, field.name)
            };
            let help = match &default {
                Some(v) => format!("{} [default: {}]", field.summary(), show(v)),
                None => field.summary(),
            };
            options.push(Opt {
                value_name: value_name(field.name, default.as_ref()),
                key,
                flag,
                env,
                help,
                default,
            });
        }
    }
    options
});

/// The table of the section `key` (`a.b` for a nested one; empty for the
/// top level).
fn section_table<'a>(root: &'a toml::Table, key: &str) -> &'a toml::Table {
    if key.is_empty() {
        return root;
    }
    key.split('.').fold(root, |table, part| {
        table[part].as_table().expect("a section is a table")
    })
}

/// The defaults as a TOML table.
fn default_table() -> toml::Table {
    toml::Table::try_from(Config::default()).expect("the defaults serialize")
}

fn show(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn value_name(name: &str, default: Option<&toml::Value>) -> &'static str {
    match default {
        _ if name.ends_with("dir") => "DIR",
        Some(toml::Value::Integer(_)) => "N",
        Some(toml::Value::Float(_)) => "NUMBER",
        Some(toml::Value::Boolean(_)) => "BOOL",
        Some(toml::Value::Array(_)) => "LIST",
        Some(toml::Value::String(s)) if humantime::parse_duration(s).is_ok() => "DURATION",
        Some(toml::Value::String(s)) if s.parse::<SocketAddr>().is_ok() => "ADDR",
        Some(toml::Value::String(s)) if s.parse::<ByteSize>().is_ok() => "BYTES",
        _ => "VALUE",
    }
}

/// An option set by a flag or an environment variable.
#[derive(Debug, Clone, PartialEq)]
struct Override {
    key: String,
    value: String,
    /// `--slo-interval` or `SMOLDER_SLO_INTERVAL`.
    source: String,
}

/// The options given as flags or environment variables; a flag wins over its
/// variable.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Overrides(Vec<Override>);

impl Overrides {
    /// Whether a flag or an environment variable sets `key`.
    pub(crate) fn sets(&self, key: &str) -> bool {
        self.0.iter().any(|o| o.key == key)
    }

    /// Sets an option as a flag would (tests, the demo).
    #[cfg(test)]
    fn flag(mut self, key: &str, value: &str) -> Self {
        self.0.push(Override {
            key: key.into(),
            value: value.into(),
            source: format!("--{key}"),
        });
        self
    }
}

impl clap::FromArgMatches for Overrides {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut overrides = Self::default();
        overrides.update_from_arg_matches(matches)?;
        Ok(overrides)
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        for option in OPTIONS.iter() {
            let Some(value) = matches.get_one::<String>(&option.key) else {
                continue;
            };
            let source = match matches.value_source(&option.key) {
                Some(ValueSource::EnvVariable) => option.env.clone(),
                _ => format!("--{}", option.flag),
            };
            self.0.retain(|o| o.key != option.key);
            self.0.push(Override {
                key: option.key.clone(),
                value: value.clone(),
                source,
            });
        }
        Ok(())
    }
}

impl Args for Overrides {
    fn augment_args(mut cmd: clap::Command) -> clap::Command {
        for option in OPTIONS.iter() {
            cmd = cmd.arg(
                Arg::new(option.key.as_str())
                    .long(option.flag.as_str())
                    .env(option.env.as_str())
                    .value_name(option.value_name)
                    .help(option.help.as_str())
                    .hide_env_values(true),
            );
        }
        cmd
    }

    fn augment_args_for_update(cmd: clap::Command) -> clap::Command {
        Self::augment_args(cmd)
    }
}

/// Server options given on the command line or in the environment.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct ServeArgs {
    /// TOML configuration file; flags and environment variables override it.
    /// `smolder config defaults` prints every option with its default.
    #[arg(long, env = "SMOLDER_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) overrides: Overrides,
}

/// The configuration's layers, kept so that a reload can layer a changed
/// file under the same flags again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Layers {
    /// The file, re-read on reload.
    pub(crate) file: Option<PathBuf>,
    overrides: Overrides,
}

impl Layers {
    /// The layers of `smolder serve`'s arguments.
    pub(crate) fn of(args: &ServeArgs) -> Self {
        Self {
            file: args.config.clone(),
            overrides: args.overrides.clone(),
        }
    }

    /// Reads the file, layers the flags over it and validates the result.
    pub(crate) fn resolve(&self) -> anyhow::Result<Config> {
        let file = match &self.file {
            Some(path) => Some((path.as_path(), read_file(path)?)),
            None => None,
        };
        let config = layer(file, &self.overrides)?;
        check(&config, self.file.as_deref())?;
        Ok(config)
    }
}

fn read_file(path: &Path) -> anyhow::Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading configuration file {}", path.display()))?;
    text.parse::<toml::Table>()
        .with_context(|| format!("in configuration file {}", path.display()))
}

/// Puts the flags over the file (over the defaults) and reads the result.
fn layer(file: Option<(&Path, toml::Table)>, overrides: &Overrides) -> anyhow::Result<Config> {
    let (path, mut table) = match file {
        Some((path, table)) => (Some(path), table),
        None => (None, toml::Table::new()),
    };
    for o in &overrides.0 {
        let option = OPTIONS
            .iter()
            .find(|opt| opt.key == o.key)
            .with_context(|| format!("{}: no option {}", o.source, o.key))?;
        let value = typed(&o.value, option.default.as_ref())
            .with_context(|| format!("{} ({}): {:?}", o.key, o.source, o.value))?;
        set(&mut table, &o.key, value);
    }
    let value = toml::Value::Table(table);
    serde_path_to_error::deserialize::<_, Config>(value).map_err(|e| {
        let key = e.path().to_string();
        let source = overrides
            .0
            .iter()
            .rev()
            .find(|o| o.key == key)
            .map(|o| o.source.clone())
            .or_else(|| path.map(|p| p.display().to_string()))
            .unwrap_or_else(|| "defaults".into());
        anyhow::anyhow!("{key} ({source}): {}", e.inner())
    })
}

/// Reads a flag's text as the type of the option's default, so that serde
/// sees what it would see in a file.
fn typed(text: &str, default: Option<&toml::Value>) -> anyhow::Result<toml::Value> {
    Ok(match default {
        Some(toml::Value::Integer(_)) => toml::Value::Integer(
            text.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("expected a whole number"))?,
        ),
        Some(toml::Value::Float(_)) => toml::Value::Float(
            text.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("expected a number"))?,
        ),
        Some(toml::Value::Boolean(_)) => toml::Value::Boolean(
            text.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("expected true or false"))?,
        ),
        // A list: comma-separated.
        Some(toml::Value::Array(_)) => toml::Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| toml::Value::String(v.to_string()))
                .collect(),
        ),
        _ => toml::Value::String(text.to_string()),
    })
}

fn set(table: &mut toml::Table, key: &str, value: toml::Value) {
    match key.split_once('.') {
        None => {
            table.insert(key.to_string(), value);
        }
        Some((section, rest)) => {
            let entry = table
                .entry(section.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if let toml::Value::Table(inner) = entry {
                set(inner, rest, value);
            } else {
                // The file has a scalar where a section belongs: replace it,
                // the file's own error would be no clearer.
                let mut inner = toml::Table::new();
                set(&mut inner, rest, value);
                *entry = toml::Value::Table(inner);
            }
        }
    }
}

/// Validates every section; the error lists every problem with its field.
fn check(config: &Config, file: Option<&Path>) -> anyhow::Result<()> {
    let problems = config.problems();
    if problems.is_empty() {
        return Ok(());
    }
    let place = file.map_or_else(String::new, |p| format!(" (file {})", p.display()));
    let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    anyhow::bail!(
        "the configuration{place} has {} problem{}:\n{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        list.join("\n")
    )
}

impl Config {
    /// Every problem of every section.
    pub(crate) fn problems(&self) -> Vec<Problem> {
        let mut problems = Problems::new("");
        self.validate(&mut problems);
        problems.into_vec()
    }

    /// Resolves `smolder serve`'s arguments.
    pub(crate) fn resolve(args: &ServeArgs) -> anyhow::Result<Self> {
        Layers::of(args).resolve()
    }

    /// The limits every listener applies (listen.rs).
    pub(crate) fn listener_limits(&self) -> crate::listen::ListenerLimits {
        crate::listen::ListenerLimits {
            max_connections: self.server.max_connections,
            idle_timeout: self.server.idle_timeout,
            header_timeout: self.server.header_timeout,
            max_streams: self.server.max_streams,
        }
    }

    /// The keys whose values differ between `self` and `other`, outside
    /// `[alerting]` (which a reload applies); these need a restart.
    pub(crate) fn changed_outside_alerting(&self, other: &Self) -> Vec<String> {
        let (Ok(a), Ok(b)) = (toml::Table::try_from(self), toml::Table::try_from(other)) else {
            return vec!["(configuration)".into()];
        };
        let mut changed = Vec::new();
        diff("", &a, &b, &mut changed);
        changed.retain(|k| k != "alerting" && !k.starts_with("alerting."));
        changed
    }
}

fn diff(prefix: &str, a: &toml::Table, b: &toml::Table, out: &mut Vec<String>) {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for key in keys {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (a.get(key), b.get(key)) {
            (Some(toml::Value::Table(x)), Some(toml::Value::Table(y))) => diff(&path, x, y, out),
            (x, y) if x != y => out.push(path),
            _ => {}
        }
    }
}

/// `smolder config defaults`: every option with its documentation and
/// default, as a TOML file (`smolder.example.toml`).
pub(crate) fn defaults_file() -> String {
    let defaults = default_table();
    let mut out = String::from(
        "# smolder configuration — every option with its default.\n\
         # Generated by `smolder config defaults`; check a file with\n\
         # `smolder config check FILE`.\n\
         # Precedence: command-line flags > environment variables > this file > defaults.\n\
         # Every option outside [alerting] has a flag and an environment variable,\n\
         # named on the line above it.\n",
    );
    for section in SECTIONS {
        let table = section_table(&defaults, section.key);
        if !section.key.is_empty() {
            out.push_str(&format!("\n[{}]\n", section.key));
            comment(&mut out, section.doc);
        }
        for field in section.fields {
            let value = table.get(field.name);
            if matches!(value, Some(toml::Value::Table(_))) {
                continue; // a section of its own
            }
            out.push('\n');
            comment(&mut out, field.doc);
            if let Some(pattern) = section.flag {
                let flag = flag_name(section.key, pattern, field.name);
                let env = format!("SMOLDER_{}", flag.to_uppercase().replace('-', "_"));
                out.push_str(&format!("# --{flag}, {env}\n"));
            }
            match value {
                Some(toml::Value::Array(a)) if a.is_empty() => {
                    out.push_str(&format!("# {}: none (examples below)\n", field.name));
                }
                Some(v) => out.push_str(&format!("{} = {v}\n", field.name)),
                None => out.push_str(&format!("# {} = (unset)\n", field.name)),
            }
        }
    }
    out.push('\n');
    out.push_str(smolder_alerting::config::EXAMPLE);
    out
}

fn comment(out: &mut String, doc: &[&str]) {
    for line in doc {
        out.push('#');
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

/// `smolder config`.
#[derive(Debug, clap::Args)]
pub(crate) struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, clap::Subcommand)]
enum ConfigCommand {
    /// Print every option with its documentation and default, as a
    /// configuration file.
    Defaults,
    /// Check a configuration file (with the flags and environment variables
    /// given) without starting a server: every problem is listed with its
    /// field; exit status 1 when there is one.
    Check {
        /// The file.
        file: PathBuf,
        #[command(flatten)]
        overrides: Overrides,
    },
}

/// Runs `smolder config`; returns the exit status.
pub(crate) fn run(args: ConfigArgs) -> i32 {
    match args.command {
        ConfigCommand::Defaults => {
            print!("{}", defaults_file());
            0
        }
        ConfigCommand::Check { file, overrides } => {
            let layers = Layers {
                file: Some(file.clone()),
                overrides,
            };
            match layers.resolve() {
                Ok(_) => {
                    println!("{}: ok", file.display());
                    0
                }
                Err(e) => {
                    eprintln!("{e:#}");
                    1
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Config> {
        layer(
            Some((Path::new("test.toml"), text.parse()?)),
            &Overrides::default(),
        )
    }

    #[test]
    fn the_example_file_is_what_config_defaults_prints() {
        let example = include_str!("../../smolder.example.toml");
        assert!(
            example == defaults_file(),
            "smolder.example.toml is out of date: run `cargo run -- config defaults > smolder.example.toml`"
        );
        assert_eq!(parse(example).unwrap(), Config::default());
    }

    #[test]
    fn every_option_of_every_section_has_a_flag_and_documentation() {
        let defaults = default_table();
        let sections: Vec<&str> = SECTIONS.iter().map(|s| s.key).collect();
        for (key, value) in &defaults {
            if let toml::Value::Table(_) = value {
                assert!(
                    sections.contains(&key.as_str()) || key == "alerting",
                    "section {key} is missing from SECTIONS"
                );
            }
        }
        for section in SECTIONS
            .iter()
            .filter(|s| s.flag.is_some() && !s.key.is_empty())
        {
            let table = defaults[section.key].as_table().unwrap();
            let fields: Vec<&str> = section.fields.iter().map(|f| f.name).collect();
            for key in table.keys() {
                assert!(fields.contains(&key.as_str()), "{}.{key}", section.key);
            }
            for field in section.fields {
                assert!(
                    !field.summary().is_empty(),
                    "{}.{}",
                    section.key,
                    field.name
                );
                let key = format!("{}.{}", section.key, field.name);
                assert!(OPTIONS.iter().any(|o| o.key == key), "no flag for {key}");
            }
        }
        // The flags that scripts use keep their names.
        for flag in [
            "data-dir",
            "otlp-grpc-addr",
            "otlp-http-addr",
            "http-addr",
            "max-request-size",
            "buffer-limit",
            "wal-sync",
            "flush-interval",
            "retention-traces",
            "query-timeout",
            "slo-interval",
            "memory-budget",
            "idle-timeout",
            "log-format",
        ] {
            assert!(OPTIONS.iter().any(|o| o.flag == flag), "--{flag}");
        }
    }

    #[test]
    fn flags_win_over_the_file_and_are_read_like_it() {
        let file: toml::Table = "[listen]\nhttp = \"127.0.0.1:9000\"\n[query]\nmax_rows = 5\n"
            .parse()
            .unwrap();
        let overrides = Overrides::default()
            .flag("query.max_rows", "7")
            .flag("slo.interval", "3s")
            .flag("wal.enabled", "false")
            .flag("server.memory_budget", "3 GiB");
        let config = layer(Some((Path::new("f.toml"), file)), &overrides).unwrap();
        assert_eq!(config.listen.http.port(), 9000);
        assert_eq!(config.query.max_rows, 7);
        assert_eq!(config.slo.interval, Duration::from_secs(3));
        assert!(!config.wal.enabled);
        assert_eq!(config.server.memory_budget, ByteSize::gib(3));
    }

    #[test]
    fn bad_values_are_refused_with_their_key_and_source() {
        let err = parse("[ingest]\nbufer_limit = \"1GiB\"\n").unwrap_err();
        assert!(format!("{err:#}").contains("bufer_limit"), "{err:#}");
        let err = parse("[query]\ntimeout = \"soon\"\n").unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("query.timeout") && text.contains("test.toml"),
            "{text}"
        );
        let err = layer(None, &Overrides::default().flag("slo.step", "often")).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("slo.step") && text.contains("--slo.step"),
            "{text}"
        );
        let err = layer(None, &Overrides::default().flag("query.max_rows", "many")).unwrap_err();
        assert!(format!("{err:#}").contains("query.max_rows"), "{err:#}");
    }

    #[test]
    fn every_problem_is_reported_at_once_with_its_field() {
        let config = parse(
            "[server]\nmemory_budget = \"1 MiB\"\nidle_timeout = \"10s\"\n\
             [retention]\nlogs = \"10m\"\n[slo]\ninterval = \"100ms\"\n\
             [[alerting.receivers]]\nname = \"x\"\ntype = \"webhook\"\nurl = \"ftp://x\"\n",
        )
        .unwrap();
        let fields: Vec<String> = config.problems().into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "retention.logs",
                "slo.interval",
                "alerting.receivers[0].url",
                "server.memory_budget",
                "server.idle_timeout",
            ]
        );
    }

    #[test]
    fn a_reload_names_the_options_that_need_a_restart() {
        let running = Config::default();
        let mut changed = running.clone();
        changed.query.timeout = Duration::from_secs(5);
        changed.alerting.examples = 1;
        assert_eq!(
            running.changed_outside_alerting(&changed),
            ["query.timeout"]
        );
    }
}

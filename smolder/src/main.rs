//! The `smolder` binary: `serve`, `demo`, `loadgen`, `slo`, `silence`, `token`.
//!
//! It wires the library crates together — ingest (OTLP receivers), storage
//! (WAL, Parquet), query (DataFusion, SQL API), slo (the SLO engine) and
//! alerting (alerts, routing, the outbox, receivers) — and
//! owns configuration and process concerns:
//! flags, environment, config file, logging, signals.

mod alerting_bench;
mod audit;
mod auth;
mod backtest_cli;
mod browser;
mod client;
mod components;
mod config;
mod demo;
mod http_layer;
mod listen;
mod loadgen;
mod ops;
mod serve;
mod silence_cli;
mod slo_bench;
mod slo_cli;
mod state;
mod supervise;
mod tls;

use std::time::Duration;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use crate::config::{Config, Layers, LogFormat, ServeArgs};

/// Ingest allocates and frees many small objects per request (decoded protobuf
/// messages, Arrow builders) across threads; glibc's allocator spent close to
/// half of the server's CPU on that under load (see BENCHMARKS.md), mimalloc a
/// small fraction.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// smolder: OpenTelemetry ingest, SQL over traces, logs and metrics, and SLO
/// alerting.
#[derive(Debug, Parser)]
#[command(name = "smolder", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: OTLP receivers (gRPC and HTTP) and the HTTP API.
    Serve(ServeArgs),
    /// Run the server on the default ports and feed it generated telemetry of a
    /// small microservice shop, with a recurring incident.
    Demo(demo::DemoArgs),
    /// Send generated telemetry to an OTLP receiver and report throughput and
    /// latency.
    Loadgen(loadgen::LoadgenArgs),
    /// Validate SLO files, or apply them to a running server.
    Slo(slo_cli::SloArgs),
    /// Add, list and expire silences of a running server.
    Silence(silence_cli::SilenceArgs),
    /// Print the documented defaults, or check a configuration file.
    Config(config::ConfigArgs),
    /// Measure the alerting stage (alert latency, delivery throughput).
    Alerting(alerting_bench::AlertingArgs),
    /// Create, list and revoke API tokens in a data directory.
    Token(auth::cli::TokenArgs),
}

fn init_logging(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // HTTPS (receivers, `slo apply`, `silence`) and SMTP over TLS use rustls
    // with the ring provider.
    smolder_alerting::manager::install_crypto_provider();
    match cli.command {
        Command::Serve(args) => {
            let config = Config::resolve(&args)?;
            init_logging(config.log.format);
            let running = serve::start(&config, &Layers::of(&args)).await?;
            running
                .run_until(serve::shutdown_signal(), Duration::from_secs(10))
                .await
        }
        Command::Demo(args) => {
            let config = Config::resolve(&args.serve)?;
            init_logging(config.log.format);
            demo::run(args, config).await
        }
        Command::Config(args) => std::process::exit(config::run(args)),
        Command::Loadgen(args) => {
            init_logging(LogFormat::Text);
            loadgen::run(args).await
        }
        Command::Slo(args) => {
            init_logging(LogFormat::Text);
            let code = slo_cli::run(args).await?;
            std::process::exit(code);
        }
        Command::Alerting(args) => {
            init_logging(LogFormat::Text);
            alerting_bench::run(args).await
        }
        Command::Silence(args) => {
            init_logging(LogFormat::Text);
            silence_cli::run(args).await
        }
        Command::Token(args) => auth::cli::run(args),
    }
}

//! `smolder demo`: a server on the default ports fed by the sample-data
//! generator through its own OTLP/HTTP receiver, with a recurring incident,
//! and the sample SLOs loaded, so a newcomer sees telemetry arriving, can
//! query it at once, and watches the incident burn error budget.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::Args;
use prost::Message;
use smolder_sample_data::{Generator, SAMPLE_SLOS};

use crate::config::{Config, Layers, ServeArgs};
use crate::serve;

/// Options of `smolder demo`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DemoArgs {
    /// Server options, as for `smolder serve`.
    #[command(flatten)]
    pub(crate) serve: ServeArgs,
    /// Simulated user requests per second.
    #[arg(long, default_value_t = 20)]
    pub(crate) rate: usize,
    /// Seed of the telemetry generator.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
    /// Time between the starts of two incidents (payment failures and slowness).
    #[arg(long, default_value = "10m", value_parser = humantime::parse_duration)]
    pub(crate) incident_every: Duration,
    /// How long each incident lasts.
    #[arg(long, default_value = "2m", value_parser = humantime::parse_duration)]
    pub(crate) incident_length: Duration,
    /// Stop after this long (runs until Ctrl-C when not given).
    #[arg(long, value_parser = humantime::parse_duration)]
    pub(crate) duration: Option<Duration>,
}

/// When the first incident starts: soon, so the UI shows a burning SLO, its
/// alert and the notifications sent by the time a newcomer opens it.
const FIRST_INCIDENT: Duration = Duration::from_secs(5);

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// Writes the sample SLOs into `<data dir>/demo-slos` (unless an SLO
/// directory is configured) and returns the directory to load.
fn sample_slo_dir(config: &Config) -> anyhow::Result<std::path::PathBuf> {
    if let Some(dir) = &config.slo.dir {
        return Ok(dir.clone());
    }
    let dir = config.data_dir.join("demo-slos");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in SAMPLE_SLOS {
        std::fs::write(dir.join(name), text)
            .with_context(|| format!("writing {}", dir.join(name).display()))?;
    }
    Ok(dir)
}

/// A webhook receiver inside the demo process, so that the demo's alerts are
/// really delivered (over HTTP, through the outbox) somewhere: it prints each
/// notification and answers 200. Used when the configuration names no
/// receiver.
async fn start_inbox() -> anyhow::Result<std::net::SocketAddr> {
    use axum::routing::post;
    async fn receive(axum::Json(body): axum::Json<serde_json::Value>) -> &'static str {
        let text = |k: &str| body[k].as_str().unwrap_or("?").to_string();
        let slos: Vec<String> = body["alerts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        format!(
                            "{} {}",
                            x["slo"].as_str().unwrap_or("?"),
                            x["labels"]["severity"].as_str().unwrap_or("")
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        println!(
            "demo inbox: {} notification {}: {}",
            text("status"),
            text("id"),
            slos.join(", ")
        );
        "ok"
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the demo inbox")?;
    let addr = listener.local_addr()?;
    let app = axum::Router::new().route("/notify", post(receive));
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "The demo inbox stopped.");
        }
    });
    Ok(addr)
}

/// The alerting configuration of the demo: every alert to the demo inbox.
fn inbox_alerting(inbox: std::net::SocketAddr) -> anyhow::Result<smolder_alerting::AlertingConfig> {
    let text = format!(
        "[route]\nreceiver = \"demo-inbox\"\ngroup_interval = \"10s\"\n\n\
         [[receivers]]\nname = \"demo-inbox\"\ntype = \"webhook\"\nurl = \"http://{inbox}/notify\"\n"
    );
    toml::from_str(&text).context("the demo's alerting configuration")
}

/// The demo is a showcase on this machine: listeners left at their default
/// (OTLP on every interface) listen on loopback instead, on the same ports, so
/// the demo needs no token (`[server] auth = "auto"`) and exposes nothing.
/// An address given explicitly is kept.
fn local_listeners(config: &mut Config) {
    let defaults = crate::config::ListenConfig::default();
    for (addr, default) in [
        (&mut config.listen.otlp_grpc, defaults.otlp_grpc),
        (&mut config.listen.otlp_http, defaults.otlp_http),
        (&mut config.listen.http, defaults.http),
    ] {
        if *addr == default {
            addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
    }
}

/// Runs the demo until Ctrl-C / SIGTERM or the configured duration.
pub(crate) async fn run(args: DemoArgs, mut config: Config) -> anyhow::Result<()> {
    config.slo.dir = Some(sample_slo_dir(&config)?);
    let inbox = if config.alerting.receivers.is_empty() {
        let addr = start_inbox().await?;
        config.alerting = inbox_alerting(addr)?;
        Some(addr)
    } else {
        None
    };
    local_listeners(&mut config);
    // Burn rates move within seconds of an incident.
    if !args.serve.overrides.sets("slo.interval") {
        config.slo.interval = Duration::from_secs(2);
    }
    let running = serve::start(&config, &Layers::of(&args.serve)).await?;
    let addrs = running.addrs;
    let api = format!("http://{}", addrs.http);
    println!();
    println!(
        "smolder demo: generating telemetry for 5 services at {} requests/s.",
        args.rate
    );
    println!(
        "An incident (payment failures and slowness) starts in {} s and lasts {:?}; another every {:?}.",
        FIRST_INCIDENT.as_secs(),
        args.incident_length,
        args.incident_every
    );
    println!();
    println!("Open the web UI: {api}/");
    println!("  SLOs and their burn rates, alerts, notifications, traces, logs and SQL.");
    if let Some(inbox) = inbox {
        println!(
            "Alerts are delivered to a webhook inside the demo (http://{inbox}/notify), which prints them below."
        );
    }
    println!();
    println!("Query it while it runs, for example:");
    println!(
        "  curl -s {api}/api/v1/sql -H 'content-type: application/json' \\\n    -d '{{\"sql\": \"SELECT service_name, count(*) AS spans, sum(CASE WHEN status_code = '\\''ERROR'\\'' THEN 1 ELSE 0 END) AS errors FROM spans GROUP BY service_name ORDER BY spans DESC\"}}'"
    );
    println!("  curl -s {api}/api/v1/slos        # SLIs, error budgets, burn rates, alert state");
    println!(
        "  curl -s {api}/api/v1/alerts      # burn-rate alerts, with example traces and a cause hint"
    );
    println!("  curl -s {api}/metrics");
    println!("Press Ctrl-C to stop.");

    let otlp_http = addrs.otlp_http.context("the demo server has every role")?;
    let traffic = tokio::spawn(drive(args.clone(), otlp_http));
    let traffic_stop = traffic.abort_handle();
    let stop = async move {
        match args.duration {
            Some(d) => {
                tokio::select! {
                    () = tokio::time::sleep(d) => {},
                    () = serve::shutdown_signal() => {},
                }
            }
            None => serve::shutdown_signal().await,
        }
        // Stop the traffic before the server, so no export meets a closed port.
        traffic_stop.abort();
    };
    running.run_until(stop, Duration::from_secs(5)).await
}

/// Sends one second of generated traffic every second, metrics every 10 s.
async fn drive(args: DemoArgs, otlp_http: std::net::SocketAddr) {
    let host = if otlp_http.ip().is_unspecified() {
        format!("127.0.0.1:{}", otlp_http.port())
    } else {
        otlp_http.to_string()
    };
    let base = format!("http://{host}/v1");
    let client = reqwest::Client::new();
    let mut generator = Generator::new(args.seed, unix_nanos() - 1_000_000_000);
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let first_incident = FIRST_INCIDENT;
    for second in 0u64.. {
        tick.tick().await;
        let elapsed = started.elapsed();
        let incident = elapsed >= first_incident && {
            let every = args.incident_every.max(Duration::from_secs(1));
            let phase = (elapsed - first_incident).as_nanos() % every.as_nanos();
            phase < args.incident_length.as_nanos()
        };
        if incident != generator.incident() {
            generator.set_incident(incident);
            tracing::info!(
                incident,
                "Demo incident {}.",
                if incident { "started" } else { "ended" }
            );
        }
        let telemetry = generator.requests(args.rate, 1_000_000_000);
        let mut posts = vec![
            ("traces", telemetry.traces.encode_to_vec()),
            ("logs", telemetry.logs.encode_to_vec()),
        ];
        if second % 10 == 0 {
            posts.push(("metrics", generator.metrics().encode_to_vec()));
        }
        for (signal, body) in posts {
            let sent = client
                .post(format!("{base}/{signal}"))
                .header("content-type", "application/x-protobuf")
                .body(body)
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => {}
                Ok(r) => tracing::warn!(signal, status = %r.status(), "Demo export refused."),
                Err(e) => tracing::warn!(signal, error = %e, "Demo export failed."),
            }
        }
        generator.set_clock(unix_nanos());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_listens_on_loopback_unless_told_otherwise() {
        let mut config = Config::default();
        config.listen.otlp_http = "10.0.0.5:4318".parse().unwrap();
        local_listeners(&mut config);
        assert_eq!(config.listen.otlp_grpc.to_string(), "127.0.0.1:4317");
        assert_eq!(config.listen.otlp_http.to_string(), "10.0.0.5:4318");
        assert_eq!(config.listen.http.to_string(), "127.0.0.1:8080");
    }
}

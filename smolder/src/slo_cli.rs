//! `smolder slo validate FILE…`, `smolder slo apply FILE… --server URL`,
//! `smolder slo backtest FILE --server URL` and `smolder slo bench`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use smolder_query::{QueryEngine, QueryLimits};
use smolder_slo::model::Origin;
use smolder_slo::spec::{self, Defaults, Loaded};

/// `smolder slo …`
#[derive(Debug, Clone, Args)]
pub(crate) struct SloArgs {
    #[command(subcommand)]
    command: SloCommand,
}

#[derive(Debug, Clone, Subcommand)]
enum SloCommand {
    /// Check SLO files (OpenSLO v1 or Sloth prometheus/v1): every problem is
    /// reported with its file, document and field; exits 1 if there is one.
    Validate {
        /// The files, loaded together (OpenSLO references resolve across them).
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Create or replace the SLOs of the files on a running server, then show
    /// the progress of their backfill from stored history.
    Apply {
        /// The files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        api: crate::client::ApiArgs,
        /// Return once the SLOs are created, without waiting for the backfill.
        #[arg(long)]
        no_wait: bool,
    },
    /// Replay an SLO's alert policy over the server's stored history: the
    /// alerts it would have raised (start, end, peak burn rates, budget
    /// spent), the notifications it would have sent, its difference to the
    /// running SLO of that id, and with --incidents each condition's
    /// precision, recall, detection and reset time.
    Backtest(crate::backtest_cli::BacktestArgs),
    /// Measure an SLO tick: evaluating many SLOs with 30 days of rollups, and
    /// updating rollups after 1 and 60 minutes of new data (use a release
    /// build).
    Bench(crate::slo_bench::BenchArgs),
}

fn read(files: &[PathBuf]) -> anyhow::Result<Vec<(String, String)>> {
    files
        .iter()
        .map(|f| {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            Ok((f.display().to_string(), text))
        })
        .collect()
}

/// Parses and checks the files against the tables' schemas.
async fn check(files: &[(String, String)]) -> anyhow::Result<Loaded> {
    let mut loaded = spec::load_texts(files, Defaults::default(), &Origin::File(String::new()));
    // Empty tables are enough to plan against.
    let engine = QueryEngine::new(Vec::new(), QueryLimits::default())?;
    let mut ok = Vec::new();
    for slo in std::mem::take(&mut loaded.slos) {
        match smolder_slo::sql::check_definition(engine.context(), &slo, Duration::from_secs(60))
            .await
        {
            Ok(()) => ok.push(slo),
            Err(mut p) => loaded.problems.append(&mut p),
        }
    }
    loaded.slos = ok;
    Ok(loaded)
}

/// Runs `smolder slo …`; returns the process exit code.
pub(crate) async fn run(args: SloArgs) -> anyhow::Result<i32> {
    match args.command {
        SloCommand::Validate { files } => {
            let loaded = check(&read(&files)?).await?;
            for p in &loaded.problems {
                println!("{p}");
            }
            for s in &loaded.slos {
                println!("ok: SLO {} ({})", s.id, s.sli.table.name());
            }
            if loaded.problems.is_empty() {
                println!("{} SLOs, no problems", loaded.slos.len());
                Ok(0)
            } else {
                println!("{} problems", loaded.problems.len());
                Ok(1)
            }
        }
        SloCommand::Apply {
            files,
            api,
            no_wait,
        } => apply(&read(&files)?, &api, no_wait).await,
        SloCommand::Backtest(args) => crate::backtest_cli::run(args).await,
        SloCommand::Bench(args) => crate::slo_bench::run(args).await.map(|()| 0),
    }
}

async fn apply(
    files: &[(String, String)],
    api: &crate::client::ApiArgs,
    no_wait: bool,
) -> anyhow::Result<i32> {
    let client = api.client()?;
    let mut ids = Vec::new();
    for (file, text) in files {
        let loaded = spec::load_texts(
            &[(file.clone(), text.clone())],
            Defaults::default(),
            &Origin::Api,
        );
        if !loaded.problems.is_empty() {
            for p in &loaded.problems {
                println!("{p}");
            }
            return Ok(1);
        }
        for slo in &loaded.slos {
            let url = api.url(&format!("/api/v1/slos/{}", slo.id));
            let response = client
                .put(&url)
                .header("content-type", "application/yaml")
                .body(text.clone())
                .send()
                .await
                .with_context(|| format!("PUT {url}"))?;
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            if !status.is_success() {
                let message = serde_json::from_str::<serde_json::Value>(&body)
                    .ok()
                    .and_then(|v| v["error"].as_str().map(str::to_string))
                    .unwrap_or(body);
                println!("{}: {status}: {message}", slo.id);
                return Ok(1);
            }
            println!(
                "{}: {}",
                slo.id,
                if status.as_u16() == 201 {
                    "created"
                } else {
                    "updated"
                }
            );
            ids.push(slo.id.clone());
        }
    }
    if no_wait {
        return Ok(0);
    }
    // Backfill progress, one bar per SLO.
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:30} [{bar:40}] {percent:>3}% {msg}")
        .expect("valid template")
        .progress_chars("=> ");
    let tracked: Vec<(String, ProgressBar)> = ids
        .iter()
        .map(|id| {
            let bar = bars.add(ProgressBar::new(1000));
            bar.set_style(style.clone());
            bar.set_prefix(id.clone());
            (id.clone(), bar)
        })
        .collect();
    loop {
        let mut all_done = true;
        for (id, bar) in &tracked {
            if bar.is_finished() {
                continue;
            }
            let url = api.url(&format!("/api/v1/slos/{id}"));
            let body = client.get(&url).send().await?.text().await?;
            let v: serde_json::Value = serde_json::from_str(&body)
                .with_context(|| format!("GET {url}: not JSON: {body}"))?;
            let progress = v["backfill"]["progress"].as_f64().unwrap_or(0.0);
            bar.set_position((progress * 1000.0) as u64);
            bar.set_message(format!(
                "through {}",
                v["backfill"]["through"].as_str().unwrap_or("?")
            ));
            if let Some(e) = v["error"].as_str() {
                bar.abandon_with_message(format!("error: {e}"));
            } else if v["backfill"]["done"].as_bool() == Some(true) {
                bar.set_position(1000);
                bar.finish_with_message("done");
            } else {
                all_done = false;
            }
        }
        if all_done {
            return Ok(0);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

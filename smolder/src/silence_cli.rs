//! `smolder silence add|list|expire`: manage silences of a running server
//! through its API.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

/// `smolder silence …`
#[derive(Debug, Clone, Args)]
pub(crate) struct SilenceArgs {
    #[command(subcommand)]
    command: SilenceCommand,
    #[command(flatten)]
    api: crate::client::ApiArgs,
}

#[derive(Debug, Clone, Subcommand)]
enum SilenceCommand {
    /// Silence the alerts all given matchers match, e.g.
    /// `smolder silence add 'slo="checkout-availability"' --duration 2h --comment "deploy"`.
    Add {
        /// Label matchers: `name="value"`, `name!="value"`, `name=~"regex"`,
        /// `name!~"regex"`.
        #[arg(required = true)]
        matchers: Vec<String>,
        /// How long from now.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Who silences [default: $USER].
        #[arg(long)]
        author: Option<String>,
        /// Why.
        #[arg(long, default_value = "")]
        comment: String,
    },
    /// List silences (active, pending, then expired).
    List {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End a silence now.
    Expire {
        /// The silence's id.
        id: String,
    },
}

async fn answer(resp: reqwest::Response) -> anyhow::Result<Value> {
    let status = resp.status();
    let bytes = resp.bytes().await.unwrap_or_default();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    if !status.is_success() {
        let msg = body["error"].as_str().unwrap_or("no details").to_string();
        anyhow::bail!("the server answered {status}: {msg}");
    }
    Ok(body)
}

/// Runs `smolder silence …`.
pub(crate) async fn run(args: SilenceArgs) -> anyhow::Result<()> {
    let client = args.api.client()?;
    let base = args.api.server.trim_end_matches('/');
    let url = args.api.url("/api/v1/silences");
    match args.command {
        SilenceCommand::Add {
            matchers,
            duration,
            author,
            comment,
        } => {
            let author = author
                .or_else(|| std::env::var("USER").ok())
                .unwrap_or_else(|| "smolder-cli".to_string());
            let body = json!({
                "matchers": matchers,
                "duration": humantime::format_duration(duration).to_string(),
                "created_by": author,
                "comment": comment,
            });
            let resp = client
                .post(&url)
                .header("content-type", "application/json")
                .body(serde_json::to_vec(&body)?)
                .send()
                .await
                .with_context(|| format!("connecting to {base}"))?;
            let s = answer(resp).await?;
            println!("{}", s["id"].as_str().unwrap_or_default());
        }
        SilenceCommand::List { json } => {
            let resp = client
                .get(&url)
                .send()
                .await
                .with_context(|| format!("connecting to {base}"))?;
            let body = answer(resp).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&body["silences"])?);
                return Ok(());
            }
            println!(
                "{:<38} {:<8} {:<23} {:<16} {:<40} COMMENT",
                "ID", "STATUS", "ENDS", "AUTHOR", "MATCHERS"
            );
            for s in body["silences"].as_array().into_iter().flatten() {
                let matchers: Vec<&str> = s["matchers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .collect();
                println!(
                    "{:<38} {:<8} {:<23} {:<16} {:<40} {}",
                    s["id"].as_str().unwrap_or_default(),
                    s["status"].as_str().unwrap_or_default(),
                    smolder_common::text::display_rfc3339(
                        s["ends_at"].as_str().unwrap_or_default()
                    ),
                    s["created_by"].as_str().unwrap_or_default(),
                    matchers.join(","),
                    s["comment"].as_str().unwrap_or_default()
                );
            }
        }
        SilenceCommand::Expire { id } => {
            let resp = client
                .delete(format!("{url}/{id}"))
                .send()
                .await
                .with_context(|| format!("connecting to {base}"))?;
            answer(resp).await?;
            println!("expired {id}");
        }
    }
    Ok(())
}

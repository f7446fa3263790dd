//! `smolder token create|list|revoke`: manage the tokens in a data
//! directory, beside a running server (which sees a change within a second).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use smolder_common::clock::{Clock as _, SystemClock};

use super::{TokenStore, parse_scopes};

/// `smolder token …`
#[derive(Debug, Clone, Args)]
pub(crate) struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    /// The server's data directory (where `auth.db` is).
    #[arg(
        long,
        global = true,
        env = "SMOLDER_DATA_DIR",
        default_value = "smolder-data"
    )]
    data_dir: PathBuf,
}

#[derive(Debug, Clone, Subcommand)]
enum TokenCommand {
    /// Make a token; prints it alone on the last line (it is not shown again).
    Create {
        /// The tenant whose data it reaches.
        #[arg(long, default_value = "default")]
        tenant: smolder_common::Tenant,
        /// What it may do: ingest, read, write, admin (comma-separated).
        #[arg(long)]
        scope: String,
        /// How long it works (e.g. 30d); unset: until revoked.
        #[arg(long, value_parser = humantime::parse_duration)]
        expires: Option<Duration>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by its id.
    Revoke {
        /// The token's id (`list` shows it).
        id: String,
    },
}

/// Runs the command.
pub(crate) fn run(args: TokenArgs) -> anyhow::Result<()> {
    let store = TokenStore::open(&args.data_dir)?;
    let audit = crate::audit::AuditLog::open(&args.data_dir)?;
    let now = SystemClock.now_ns();
    match args.command {
        TokenCommand::Create {
            tenant,
            scope,
            expires,
        } => {
            let scopes = parse_scopes(&scope).map_err(anyhow::Error::msg)?;
            let (info, token) = store.create(&tenant, &scopes, expires, now)?;
            let scopes: Vec<String> = info.scopes.iter().map(ToString::to_string).collect();
            audit.record(
                "local",
                info.tenant.as_str(),
                &format!("token create {} ({})", info.id, scopes.join(",")),
                None,
                "local",
            );
            println!(
                "Token {} for tenant {} with {}{}; keep it now, it is not shown again:",
                info.id,
                info.tenant,
                scopes.join(","),
                info.expires_at
                    .map(|e| format!(", expires {}", smolder_common::text::display_time(e)))
                    .unwrap_or_default()
            );
            println!("{token}");
        }
        TokenCommand::List => {
            println!(
                "{:<14} {:<16} {:<24} {:<8} EXPIRES",
                "ID", "TENANT", "SCOPES", "STATE"
            );
            for t in store.list() {
                let scopes: Vec<String> = t.scopes.iter().map(ToString::to_string).collect();
                println!(
                    "{:<14} {:<16} {:<24} {:<8} {}",
                    t.id,
                    t.tenant,
                    scopes.join(","),
                    t.state(now),
                    t.expires_at
                        .map_or_else(|| "never".into(), smolder_common::text::display_time)
                );
            }
        }
        TokenCommand::Revoke { id } => {
            anyhow::ensure!(store.revoke(&id, now)?, "no active token {id}");
            let tenant = store
                .list()
                .into_iter()
                .find(|t| t.id == id)
                .map(|t| t.tenant)
                .unwrap_or_default();
            audit.record(
                "local",
                tenant.as_str(),
                &format!("token revoke {id}"),
                None,
                "local",
            );
            println!("revoked {id}");
        }
    }
    Ok(())
}

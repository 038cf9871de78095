//! `floodgate keys create|list|revoke`: the key store the server reads (`[store]`); a
//! running server sees a revocation here within `store.key_cache_refresh_ms`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;
use floodgate_gateway::auth::{self, KeyLimits, NewKey, Scope};
use floodgate_gateway::config::Config;
use floodgate_gateway::events;
use floodgate_gateway::records::{AdminAction, AdminRecord, RecordStore};
use floodgate_gateway::store::Stores;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it once (it is stored only as a hash).
    Create {
        /// A label for people reading `keys list`.
        #[arg(long, default_value = "")]
        name: String,
        #[arg(long, default_value = "default")]
        tenant: String,
        /// User segment (e.g. free, pro).
        #[arg(long, default_value = "default")]
        segment: String,
        /// Comma-separated scopes: inference, moderations, feedback, admin, reviewer,
        /// auditor (default: auth.default_scopes).
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Requests per minute (default: ratelimit.key_requests_per_minute).
        #[arg(long)]
        rpm: Option<f64>,
        /// Tokens per minute (default: ratelimit.key_tokens_per_minute).
        #[arg(long)]
        tpm: Option<f64>,
        /// US dollars per day (default: ratelimit.key_cost_usd_per_day).
        #[arg(long)]
        usd_per_day: Option<f64>,
        /// Requests in flight at once (default: ratelimit.key_max_concurrent).
        #[arg(long)]
        max_concurrent: Option<u32>,
        /// Spending cap in US dollars.
        #[arg(long)]
        budget_usd: Option<f64>,
        /// Print the key and its record as JSON.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long)]
        json: bool,
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Revoke a key by id (`key_…`); running servers refuse it within
    /// `store.key_cache_refresh_ms`.
    Revoke {
        id: String,
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
    },
}

async fn open(config: Option<&std::path::Path>) -> Result<(Config, Stores), ExitCode> {
    let config = Config::load(config).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })?;
    let stores = Stores::open(&config).await.map_err(|e| {
        eprintln!("error: {e:#}");
        ExitCode::FAILURE
    })?;
    Ok((config, stores))
}

/// The command line has no event log of its own (the server's is one writer's): its key
/// changes go straight into the store's admin records, as the server's admin events do.
async fn record_admin(
    records: &dyn RecordStore,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> Result<(), ExitCode> {
    let user = std::env::var("USER").unwrap_or_default();
    let record = AdminRecord {
        event_id: events::new_id(),
        time_ms: events::now_ms(),
        origin: format!("cli/{user}"),
        action: AdminAction {
            action: action.to_string(),
            actor: "cli".to_string(),
            target: target.to_string(),
            detail,
        },
    };
    records.put_admin(&[record]).await.map_err(|e| {
        eprintln!("error: the change is made, but its admin record was not stored: {e}");
        ExitCode::FAILURE
    })?;
    Ok(())
}

pub async fn run(command: KeysCommand) -> ExitCode {
    match run_inner(command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

async fn run_inner(command: KeysCommand) -> Result<(), ExitCode> {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    };
    match command {
        KeysCommand::Create {
            name,
            tenant,
            segment,
            scopes,
            rpm,
            tpm,
            usd_per_day,
            max_concurrent,
            budget_usd,
            json,
            config,
        } => {
            let (config, store) = open(config.as_deref()).await?;
            let scopes = if scopes.is_empty() {
                config
                    .auth
                    .default_scopes
                    .iter()
                    .map(|s| s.to_string())
                    .collect()
            } else {
                scopes
            };
            let scopes = scopes
                .iter()
                .map(|s| s.trim().parse::<Scope>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                })?;
            for (flag, v) in [
                ("--rpm", rpm),
                ("--tpm", tpm),
                ("--usd-per-day", usd_per_day),
                ("--budget-usd", budget_usd),
            ] {
                if v.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
                    eprintln!("error: {flag} must be a non-negative number");
                    return Err(ExitCode::from(2));
                }
            }
            let created = auth::create_key(
                store.keys.as_ref(),
                NewKey {
                    name,
                    tenant,
                    segment,
                    scopes,
                    limits: KeyLimits {
                        requests_per_minute: rpm,
                        tokens_per_minute: tpm,
                        cost_usd_per_day: usd_per_day,
                        max_concurrent,
                    },
                    budget_usd,
                },
            )
            .await
            .map_err(|e| fail(&e))?;
            let r = &created.record;
            let detail = serde_json::json!({
                "name": r.name, "tenant": r.tenant, "segment": r.segment,
                "scopes": r.scopes, "limits": r.limits, "budget_usd": r.budget_usd,
            });
            record_admin(store.records.as_ref(), "key.created", &r.id, detail).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&created).map_err(|e| fail(&e))?
                );
            } else {
                println!("{}", created.key);
                eprintln!(
                    "created {} (tenant {}, scopes {}). The key above is shown once; store it now.",
                    created.record.id,
                    created.record.tenant,
                    created
                        .record
                        .scopes
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(",")
                );
            }
        }
        KeysCommand::List { json, config } => {
            let (_, store) = open(config.as_deref()).await?;
            let keys = store.keys.list().await.map_err(|e| fail(&e))?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&keys).map_err(|e| fail(&e))?
                );
            } else {
                println!(
                    "{:<21} {:<13} {:<12} {:<10} {:<30} STATUS",
                    "ID", "PREFIX", "TENANT", "SEGMENT", "SCOPES"
                );
                for k in keys {
                    let scopes = k
                        .scopes
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(",");
                    let status = if k.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<21} {:<13} {:<12} {:<10} {:<30} {status}",
                        k.id,
                        format!("{}…", k.prefix),
                        k.tenant,
                        k.segment,
                        scopes
                    );
                }
            }
        }
        KeysCommand::Revoke { id, config } => {
            let (_, store) = open(config.as_deref()).await?;
            let now = floodgate_gateway::clock::unix_secs();
            if store.keys.revoke(&id, now).await.map_err(|e| fail(&e))? {
                record_admin(
                    store.records.as_ref(),
                    "key.revoked",
                    &id,
                    serde_json::json!({}),
                )
                .await?;
                println!("revoked {id}");
            } else {
                eprintln!("error: no active key `{id}`");
                return Err(ExitCode::FAILURE);
            }
        }
    }
    Ok(())
}

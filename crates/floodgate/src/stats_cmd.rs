//! `floodgate stats`: requests, errors, latency and time-to-first-token percentiles,
//! tokens and cost per route, model and version over a recent window, from the
//! per-minute rollups in the store (the same figures as the dashboard).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use floodgate_gateway::config::Config;
use floodgate_gateway::records::stats::{minute_of, Totals};

#[derive(Args)]
pub struct StatsArgs {
    #[arg(long, env = "FLOODGATE_CONFIG")]
    config: Option<PathBuf>,
    /// How far back: `90s`, `30m`, `1h`, `2d` (a bare number is hours).
    #[arg(long, default_value = "1h")]
    window: String,
    /// One JSON object per route, model and version instead of the table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: StatsArgs) -> ExitCode {
    match stats(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `1h` → 3600.
fn parse_window(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("--window `{text}`: expected a number and a unit (s, m, h, d)"))?;
    let unit = match unit.trim() {
        "s" => 1,
        "m" | "min" => 60,
        "" | "h" => 3600,
        "d" => 86_400,
        other => {
            return Err(format!(
                "--window `{text}`: unknown unit `{other}` (s, m, h, d)"
            ))
        }
    };
    if n <= 0 {
        return Err(format!("--window `{text}`: must be positive"));
    }
    Ok(n.saturating_mul(unit))
}

fn ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.0}"))
}

async fn stats(args: StatsArgs) -> Result<(), String> {
    let seconds = parse_window(&args.window)?;
    let config = Config::load(args.config.as_deref()).map_err(|e| e.to_string())?;
    let db = floodgate_gateway::store::Stores::describe(&config);
    let records = floodgate_gateway::store::Stores::open(&config)
        .await
        .map_err(|e| format!("{e:#}"))?
        .records;
    let now = floodgate_gateway::clock::unix_secs();
    let to = minute_of(now) + 60;
    let from = minute_of(now - seconds + 60);
    let rows = records
        .stats_since(from, to)
        .await
        .map_err(|e| format!("{db}: {e}"))?;
    let mut sums: BTreeMap<(String, String), Totals> = BTreeMap::new();
    let mut all = Totals::default();
    for r in &rows {
        sums.entry((r.route.clone(), r.model.clone()))
            .or_default()
            .add(&r.totals);
        all.add(&r.totals);
    }
    if args.json {
        for ((route, variant), t) in &sums {
            let (model, version) = variant.split_once('@').unwrap_or((variant.as_str(), ""));
            let line = serde_json::json!({
                "route": route,
                "model": model,
                "version": version,
                "requests": t.requests,
                "errors": t.errors,
                "refused": t.refused,
                "escalated": t.escalated,
                "latency_ms": {"p50": t.latency_ms(0.5), "p95": t.latency_ms(0.95), "p99": t.latency_ms(0.99)},
                "ttft_ms": {"p50": t.ttft_ms(0.5), "p95": t.ttft_ms(0.95)},
                "prompt_tokens": t.prompt_tokens,
                "completion_tokens": t.completion_tokens,
                "cost_usd": t.cost_usd,
            });
            println!("{line}");
        }
        return Ok(());
    }
    println!(
        "last {} ({} requests) in {db}; latency and TTFT in ms, to within one histogram bucket",
        args.window.trim(),
        all.requests
    );
    let header = [
        "route",
        "model",
        "version",
        "requests",
        "error %",
        "p50",
        "p95",
        "p99",
        "ttft p50",
        "ttft p95",
        "tokens in",
        "tokens out",
        "cost usd",
    ];
    let mut table: Vec<Vec<String>> = vec![header.iter().map(|s| (*s).to_string()).collect()];
    for ((route, variant), t) in &sums {
        let (model, version) = variant.split_once('@').unwrap_or((variant.as_str(), "-"));
        table.push(vec![
            route.clone(),
            model.to_string(),
            version.to_string(),
            t.requests.to_string(),
            format!("{:.1}", t.error_rate() * 100.0),
            ms(t.latency_ms(0.5)),
            ms(t.latency_ms(0.95)),
            ms(t.latency_ms(0.99)),
            ms(t.ttft_ms(0.5)),
            ms(t.ttft_ms(0.95)),
            t.prompt_tokens.to_string(),
            t.completion_tokens.to_string(),
            format!("{:.6}", t.cost_usd),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, v)| {
                if c < 3 {
                    format!("{v:<w$}", w = widths[c])
                } else {
                    format!("{v:>w$}", w = widths[c])
                }
            })
            .collect();
        println!("{}", cells.join("  ").trim_end());
    }
    if sums.is_empty() {
        println!("(no requests recorded in this window)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_with_units() {
        assert_eq!(parse_window("1h"), Ok(3600));
        assert_eq!(parse_window("30m"), Ok(1800));
        assert_eq!(parse_window("2d"), Ok(172_800));
        assert_eq!(parse_window("90s"), Ok(90));
        assert_eq!(parse_window("6"), Ok(21_600));
        assert!(parse_window("h").is_err());
        assert!(parse_window("1w").is_err());
        assert!(parse_window("0h").is_err());
    }
}

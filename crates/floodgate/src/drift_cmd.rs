//! `floodgate drift`: reference profiles for drift detection, and the state per key.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;
use floodgate_drift::{Features, Profile, ProfileConfig};
use floodgate_gateway::analytics::StoredProfile;
use floodgate_gateway::config::Config;
use serde_json::Value;

#[derive(Subcommand)]
pub enum DriftCommand {
    /// Build and store the reference profile of a route or model.
    Profile {
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
        /// The route or model the profile is for (live windows are keyed the same way:
        /// a request's route, else its model's name before any `@version`).
        #[arg(long)]
        key: String,
        /// JSON lines of requests: OpenAI chat bodies (`{"messages": [...]}`),
        /// completion bodies (`{"prompt": "..."}`) or `{"text": "..."}`. Only the
        /// prompt's features are profiled (answers are not in the file).
        #[arg(long, conflicts_with = "window")]
        from: Option<PathBuf>,
        /// The recorded traffic of this key over a recent window (`7d`, `24h`, `90m`):
        /// every feature, answers included.
        #[arg(long)]
        window: Option<String>,
        /// Write the profile here too (JSON).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The drift state per key (the same as `GET /admin/drift`).
    Status {
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Delete a key's profile (its windows stop being tested).
    Rm {
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
        #[arg(long)]
        key: String,
    },
}

pub async fn run(command: DriftCommand) -> ExitCode {
    let result = match command {
        DriftCommand::Profile {
            config,
            key,
            from,
            window,
            out,
        } => {
            profile(
                config.as_deref(),
                &key,
                from.as_deref(),
                window.as_deref(),
                out.as_deref(),
            )
            .await
        }
        DriftCommand::Status { config } => status(config.as_deref()).await,
        DriftCommand::Rm { config, key } => rm(config.as_deref(), &key).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(path: Option<&Path>) -> Result<Config, String> {
    Config::load(path).map_err(|e| e.to_string())
}

/// `7d`, `24h`, `90m`, `3600s` → seconds.
fn parse_window(w: &str) -> Result<i64, String> {
    let (n, unit) = w.split_at(w.len().saturating_sub(1));
    let n: i64 = n
        .parse()
        .map_err(|_| format!("--window {w}: expected e.g. 7d, 24h, 90m"))?;
    let unit = match unit {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err(format!("--window {w}: the unit is d, h, m or s")),
    };
    Ok(n * unit)
}

/// A request body's user text and turns (as the request path computes them).
fn prompt_of(row: &Value) -> Option<(String, u32)> {
    if let Some(messages) = row.get("messages").and_then(Value::as_array) {
        let users: Vec<&str> = messages
            .iter()
            .filter(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .filter_map(|m| m.get("content").and_then(Value::as_str))
            .collect();
        return Some((
            users.join("\n"),
            u32::try_from(users.len()).unwrap_or(u32::MAX),
        ));
    }
    row.get("prompt")
        .or_else(|| row.get("text"))
        .and_then(Value::as_str)
        .map(|t| (t.to_string(), 1))
}

/// The features present in every sample (a file has no answers, so no tokens, scores,
/// refusals or escalations): the others are left out of the profile.
fn file_exclusions() -> Vec<String> {
    [
        "prompt_tokens",
        "completion_tokens",
        "guard_score",
        "router_score",
        "refused",
        "escalated",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

async fn profile(
    config_path: Option<&Path>,
    key: &str,
    from: Option<&Path>,
    window: Option<&str>,
    out: Option<&Path>,
) -> Result<(), String> {
    let config = load(config_path)?;
    let mut cfg = ProfileConfig {
        window: config.drift.window,
        bootstrap_windows: config.drift.bootstrap_windows,
        false_alarm_rate: config.drift.false_alarm_rate,
        ..ProfileConfig::default()
    };
    let stores = floodgate_gateway::store::Stores::open(&config)
        .await
        .map_err(|e| format!("{e:#}"))?;
    let (samples, source): (Vec<Features>, String) = match (from, window) {
        (Some(path), None) => {
            let text =
                std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let embedder = floodgate_gateway::prompt_features::load_embedder(&config)?;
            if embedder.is_none() {
                eprintln!("note: no sentence encoder (all-minilm-l6-v2 not cached, drift.embedder = \"none\", or a build without the engine): the profile has no embedding test");
            }
            let mut samples = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let row: Value = serde_json::from_str(line)
                    .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
                let (prompt, turns) = prompt_of(&row).ok_or_else(|| {
                    format!("{}:{}: no messages, prompt or text", path.display(), i + 1)
                })?;
                samples.push(floodgate_gateway::prompt_features::compute(
                    &prompt,
                    turns,
                    embedder.as_deref(),
                ));
            }
            cfg.exclude = file_exclusions();
            (samples, format!("file:{}", path.display()))
        }
        (None, Some(w)) => {
            let since = floodgate_gateway::events::now_ms() / 1000 - parse_window(w)?;
            let records = stores
                .records
                .route_records(key, since)
                .await
                .map_err(|e| e.to_string())?;
            let samples: Vec<Features> = records.into_iter().filter_map(|(r, _)| r.drift).collect();
            (samples, format!("window:{w}"))
        }
        _ => return Err("give --from FILE.jsonl or --window 7d".into()),
    };
    let started = std::time::Instant::now();
    let profile = Profile::build(&samples, &cfg).map_err(|e| format!("{key}: {e}"))?;
    let json = serde_json::to_string(&profile).map_err(|e| e.to_string())?;
    if let Some(out) = out {
        std::fs::write(out, &json).map_err(|e| format!("{}: {e}", out.display()))?;
    }
    stores
        .analytics
        .put_profile(&StoredProfile {
            key: key.to_string(),
            profile: json,
            source: source.clone(),
            created_at: floodgate_gateway::events::now_ms() / 1000,
        })
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "profile `{key}`: {} samples from {source}, window {}, {} calibration windows, false-alarm target {} ({:.1} s); stored in {}",
        profile.n,
        profile.window,
        cfg.bootstrap_windows,
        profile.false_alarm_rate,
        started.elapsed().as_secs_f64(),
        floodgate_gateway::store::Stores::describe(&config)
    );
    println!("| feature | test | threshold |\n|---|---|---|");
    for (name, test, t) in profile.thresholds() {
        println!("| {name} | {test} | {t:.4} |");
    }
    Ok(())
}

async fn status(config_path: Option<&Path>) -> Result<(), String> {
    let config = load(config_path)?;
    let a = floodgate_gateway::store::Stores::open(&config)
        .await
        .map_err(|e| format!("{e:#}"))?
        .analytics;
    let profiles = a.profiles().await.map_err(|e| e.to_string())?;
    let states = a.drift_states().await.map_err(|e| e.to_string())?;
    let suggestions = a.suggestions(20).await.map_err(|e| e.to_string())?;
    let body = floodgate_gateway::admin::drift_json(&profiles, &states, &suggestions);
    println!(
        "{}",
        serde_json::to_string_pretty(&body).map_err(|e| e.to_string())?
    );
    Ok(())
}

async fn rm(config_path: Option<&Path>, key: &str) -> Result<(), String> {
    let config = load(config_path)?;
    let a = floodgate_gateway::store::Stores::open(&config)
        .await
        .map_err(|e| format!("{e:#}"))?
        .analytics;
    if a.delete_profile(key).await.map_err(|e| e.to_string())? {
        println!("profile `{key}` deleted");
        Ok(())
    } else {
        Err(format!("no profile `{key}`"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse() {
        assert_eq!(parse_window("7d").unwrap(), 604_800);
        assert_eq!(parse_window("90m").unwrap(), 5_400);
        assert!(parse_window("7w").is_err());
        assert!(parse_window("d").is_err());
    }

    #[test]
    fn prompts_from_bodies() {
        let chat = serde_json::json!({"messages": [{"role": "system", "content": "s"},
            {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"}]});
        assert_eq!(prompt_of(&chat), Some(("a\nc".to_string(), 2)));
        assert_eq!(
            prompt_of(&serde_json::json!({"prompt": "p"})),
            Some(("p".into(), 1))
        );
        assert_eq!(prompt_of(&serde_json::json!({"x": 1})), None);
    }
}

//! `floodgate bench`: a load generator for any OpenAI-compatible server (Floodgate,
//! llama.cpp's servers, vLLM, ...).
//!
//! For each concurrency level it keeps that many streamed requests in flight until the
//! level's request count is done, then reports TTFT, inter-token latency, output tokens/s and
//! requests/s as a markdown table (stdout and `<out>/<label>-bench.md`), the raw figures as
//! JSON (`<label>-bench.json`) and a plot (`<label>-bench.png`).
//!
//! Modules: `sse` (event-stream decoding), `request` (one streamed request and its timings),
//! `load` (one concurrency level), `stats` (percentiles), `report` (table and JSON), `plot`
//! (PNG), `prompts` (built-in set and JSONL files).
//!
//! This crate knows nothing of Floodgate's internals: it speaks only the public OpenAI wire
//! format, so the same numbers can be taken from any server.
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod error;
pub mod load;
pub mod plot;
pub mod prompts;
pub mod report;
pub mod request;
pub mod sse;
pub mod stats;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use error::BenchError;
use prompts::Prompt;
use report::{LevelReport, Report};
pub use request::Api;
use request::{RequestOptions, Target};

/// Command-line arguments of `floodgate bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Base URL of the server (its root, or ending in /v1).
    #[arg(long)]
    pub url: String,
    /// Model name to send in every request.
    #[arg(long)]
    pub model: String,
    /// Which endpoint to call.
    #[arg(long, value_enum, default_value_t = Api::Chat)]
    pub api: Api,
    /// Concurrency levels, comma-separated: requests kept in flight at once.
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    pub concurrency: Vec<usize>,
    /// Requests per level (default: max(2 × concurrency, 8)).
    #[arg(long)]
    pub requests_per_level: Option<usize>,
    /// max_tokens of every request.
    #[arg(long, default_value_t = 128)]
    pub max_tokens: u32,
    /// Requests sent one at a time before the first level, not measured.
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// JSONL file of prompts: a JSON string, {"prompt": ...} or {"messages": [...]} per line
    /// (default: a built-in set of 16 prompts).
    #[arg(long)]
    pub prompts: Option<PathBuf>,
    /// Directory for <label>-bench.md, .json and .png.
    #[arg(long, default_value = "bench/out")]
    pub out: PathBuf,
    /// Name of this run in file names and titles (default: the model name).
    #[arg(long)]
    pub label: Option<String>,
    /// Bearer token sent as `Authorization`.
    #[arg(long, env = "FLOODGATE_BENCH_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Send "ignore_eos": true, so every request generates exactly max_tokens (fair tok/s
    /// across servers); `--ignore-eos=false` to let requests stop at end of text.
    #[arg(long, default_value_t = true, num_args = 0..=1, default_missing_value = "true",
          action = clap::ArgAction::Set)]
    pub ignore_eos: bool,
    /// Sampling temperature.
    #[arg(long, default_value_t = 0.0)]
    pub temperature: f64,
    /// Per-request timeout in seconds (whole stream).
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
}

/// A validated benchmark run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub url: String,
    pub api: Api,
    pub api_key: Option<String>,
    pub options: RequestOptions,
    pub levels: Vec<(usize, usize)>,
    pub warmup: usize,
    pub prompts: Vec<Prompt>,
    pub prompts_source: String,
    pub out: PathBuf,
    pub label: String,
    pub timeout: Duration,
}

impl Plan {
    /// Checks the arguments (every problem reported at once) and reads the prompts.
    pub fn from_args(args: BenchArgs) -> Result<Self, BenchError> {
        let mut problems = Vec::new();
        if !(args.url.starts_with("http://") || args.url.starts_with("https://")) {
            problems.push(format!(
                "--url must start with http:// or https:// (got `{}`)",
                args.url
            ));
        }
        if args.model.trim().is_empty() {
            problems.push("--model must not be empty".to_string());
        }
        if args.concurrency.is_empty() || args.concurrency.contains(&0) {
            problems.push("--concurrency must be a list of positive numbers".to_string());
        }
        if args.requests_per_level == Some(0) {
            problems.push("--requests-per-level must be positive".to_string());
        }
        if args.max_tokens == 0 {
            problems.push("--max-tokens must be positive".to_string());
        }
        if !(args.temperature.is_finite() && args.temperature >= 0.0) {
            problems.push("--temperature must be a non-negative number".to_string());
        }
        if args.timeout == 0 {
            problems.push("--timeout must be positive".to_string());
        }
        if !problems.is_empty() {
            return Err(BenchError::Args(problems.join("\n")));
        }
        let (prompts, prompts_source) = match &args.prompts {
            Some(path) => (prompts::load(path)?, path.display().to_string()),
            None => (prompts::built_in(), "built-in".to_string()),
        };
        let levels = args
            .concurrency
            .iter()
            .map(|&c| (c, args.requests_per_level.unwrap_or((2 * c).max(8))))
            .collect();
        let label = sanitize_label(args.label.as_deref().unwrap_or(&args.model));
        Ok(Self {
            url: args.url,
            api: args.api,
            api_key: args.api_key,
            options: RequestOptions {
                model: args.model,
                max_tokens: args.max_tokens,
                temperature: args.temperature,
                ignore_eos: args.ignore_eos,
            },
            levels,
            warmup: args.warmup,
            prompts,
            prompts_source,
            out: args.out,
            label,
            timeout: Duration::from_secs(args.timeout),
        })
    }
}

/// File-name-safe label: anything but letters, digits, `.`, `_` and `-` becomes `-`.
fn sanitize_label(label: &str) -> String {
    let s: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    if s.is_empty() {
        "bench".to_string()
    } else {
        s
    }
}

/// Runs the warm-up and every level; progress goes to stderr.
pub async fn execute(plan: &Plan) -> Result<Report, BenchError> {
    let target = Arc::new(Target::new(
        &plan.url,
        plan.api,
        plan.api_key.clone(),
        &plan.options,
        plan.timeout,
    )?);
    let prompts = Arc::new(plan.prompts.clone());
    let started_unix_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    if plan.warmup > 0 {
        eprintln!("warm-up: {} requests to {}", plan.warmup, target.endpoint());
        let mut last_error = None;
        let mut any_ok = false;
        for i in 0..plan.warmup {
            let sample = target.send(&prompts[i % prompts.len()]).await;
            match sample.error {
                None => any_ok = true,
                Some(e) => last_error = Some(e),
            }
        }
        if !any_ok {
            return Err(BenchError::Unreachable {
                url: target.endpoint().to_string(),
                message: last_error.unwrap_or_default(),
            });
        }
    }
    let mut levels = Vec::new();
    for &(concurrency, requests) in &plan.levels {
        eprint!("concurrency {concurrency}: {requests} requests ... ");
        let run = load::run_level(&target, &prompts, concurrency, requests).await;
        let level = LevelReport::from_run(run);
        eprintln!(
            "{:.1}s, {:.1} tok/s, {} errors",
            level.wall_s, level.output_tokens_per_s, level.errors
        );
        if let Some(e) = level.error_samples.first() {
            eprintln!("  first error: {e}");
        }
        levels.push(level);
    }
    Ok(Report {
        label: plan.label.clone(),
        url: plan.url.clone(),
        endpoint: target.endpoint().to_string(),
        model: plan.options.model.clone(),
        api: plan.api,
        max_tokens: plan.options.max_tokens,
        temperature: plan.options.temperature,
        ignore_eos: plan.options.ignore_eos,
        warmup: plan.warmup,
        prompts: plan.prompts_source.clone(),
        prompt_count: plan.prompts.len(),
        started_unix_s,
        levels,
    })
}

/// The paths a report is written to.
pub fn output_paths(out: &Path, label: &str) -> [PathBuf; 3] {
    ["md", "json", "png"].map(|ext| out.join(format!("{label}-bench.{ext}")))
}

/// Writes the markdown table, the JSON and the plot. A plot that cannot be drawn is a
/// warning, not a failure.
pub fn write_outputs(report: &Report, out: &Path) -> Result<(), BenchError> {
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| BenchError::Write { path, source }
    };
    std::fs::create_dir_all(out).map_err(write_err(out))?;
    let [md, json, png] = output_paths(out, &report.label);
    std::fs::write(&md, report.markdown()).map_err(write_err(&md))?;
    let body = serde_json::to_string_pretty(report)
        .map_err(|e| std::io::Error::other(e.to_string()))
        .map_err(write_err(&json))?;
    std::fs::write(&json, body + "\n").map_err(write_err(&json))?;
    let with_text = plot::font_available();
    if !with_text {
        eprintln!(
            "warning: no TTF font found (set {} to one); the plot has no labels",
            plot::FONT_ENV
        );
    }
    match plot::draw(report, &png, with_text) {
        Ok(()) => eprintln!(
            "wrote {}, {} and {}",
            md.display(),
            json.display(),
            png.display()
        ),
        Err(e) => {
            eprintln!("warning: {e}");
            eprintln!("wrote {} and {}", md.display(), json.display());
        }
    }
    Ok(())
}

/// `floodgate bench`. Exit status: 0 when at least one request succeeded, 1 when none did or
/// the server could not be reached, 2 for bad arguments.
pub async fn run(args: BenchArgs) -> ExitCode {
    match run_inner(args).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("floodgate bench: {e}");
            e.exit_code()
        }
    }
}

async fn run_inner(args: BenchArgs) -> Result<ExitCode, BenchError> {
    let plan = Plan::from_args(args)?;
    let report = execute(&plan).await?;
    print!("{}", report.markdown());
    write_outputs(&report, &plan.out)?;
    if report.levels.iter().all(|l| l.succeeded == 0) {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        Cli::try_parse_from(std::iter::once("bench").chain(args.iter().copied())).map(|c| c.args)
    }

    #[test]
    fn defaults() {
        let a = parse(&["--url", "http://h:1", "--model", "m"]).unwrap();
        assert_eq!(a.concurrency, vec![1, 4, 16, 64]);
        assert_eq!(a.api, Api::Chat);
        assert_eq!(a.max_tokens, 128);
        assert_eq!(a.warmup, 2);
        assert!(a.ignore_eos);
        assert_eq!(a.temperature, 0.0);
        assert_eq!(a.out, PathBuf::from("bench/out"));
        let plan = Plan::from_args(a).unwrap();
        assert_eq!(plan.levels, vec![(1, 8), (4, 8), (16, 32), (64, 128)]);
        assert_eq!(plan.label, "m");
        assert_eq!(plan.prompts.len(), 16);
    }

    #[test]
    fn flags() {
        let a = parse(&[
            "--url",
            "http://h:1",
            "--model",
            "org/m:q4",
            "--api",
            "completions",
            "--concurrency",
            "2,8",
            "--requests-per-level",
            "5",
            "--ignore-eos=false",
        ])
        .unwrap();
        assert!(!a.ignore_eos);
        assert_eq!(a.api, Api::Completions);
        let plan = Plan::from_args(a).unwrap();
        assert_eq!(plan.levels, vec![(2, 5), (8, 5)]);
        assert_eq!(plan.label, "org-m-q4");
        let a = parse(&["--url", "http://h", "--model", "m", "--ignore-eos"]).unwrap();
        assert!(a.ignore_eos);
    }

    #[test]
    fn all_argument_problems_are_reported_together() {
        let a = parse(&[
            "--url",
            "h:1",
            "--model",
            "m",
            "--concurrency",
            "0,4",
            "--max-tokens",
            "0",
        ])
        .unwrap();
        let err = Plan::from_args(a).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("--url") && msg.contains("--concurrency") && msg.contains("--max-tokens"),
            "{msg}"
        );
        assert_eq!(err.exit_code(), ExitCode::from(2));
    }
}

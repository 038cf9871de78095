//! `floodgate eval run|report`: the command line over `floodgate_lab::eval`, which
//! does the work (asking the server, grading, statistics, storage, the chart).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;
use floodgate_gateway::config::Config;
use floodgate_lab::eval::{self, classify::QueryClassifier, client::ClientOptions};

/// Exit status of `eval run --fail-on-regression` when a regression was flagged.
const REGRESSION_EXIT: u8 = 3;

#[derive(Subcommand)]
pub enum EvalCommand {
    /// Answer golden sets with served models, versions, variants or routes, grade the
    /// answers (aliases, or an LLM judge for {"prompt","reference"} rows), print accuracy
    /// with 95% intervals and slices, and flag regressions against the previous run of
    /// the same model name or --baseline.
    Run {
        /// Golden file(s): JSONL of {"question","answers"} and/or {"prompt","reference"},
        /// optionally with "segment" and "type".
        #[arg(long, required = true)]
        golden: Vec<PathBuf>,
        /// What to evaluate, as a client names it: MODEL, MODEL@VERSION,
        /// MODEL@VERSION:VARIANT or a route (repeatable).
        #[arg(long)]
        target: Vec<String>,
        /// Also run this target first and compare every other target with it.
        #[arg(long)]
        baseline: Option<String>,
        /// Only the first N rows of each golden file.
        #[arg(long)]
        limit: Option<usize>,
        /// The judge model (default: the largest chat model the server lists).
        #[arg(long)]
        judge: Option<String>,
        /// Judge QA rows too (coherence, and agreement with the aliases).
        #[arg(long)]
        judge_qa: bool,
        /// The server's base URL.
        #[arg(long, env = "FLOODGATE_URL", default_value = "http://127.0.0.1:8080")]
        server: String,
        /// API key (`fg-…`), sent as a bearer token.
        #[arg(long, env = "FLOODGATE_API_KEY", hide_env_values = true)]
        key: Option<String>,
        /// The results file (default: <models home>/evals/runs.jsonl).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 2)]
        concurrency: usize,
        /// Longest answer, in tokens.
        #[arg(long, default_value_t = 32)]
        max_tokens: u32,
        /// Longest judge reply, in tokens.
        #[arg(long, default_value_t = 48)]
        judge_max_tokens: u32,
        /// System message before each question ("" for none).
        #[arg(long, default_value = eval::DEFAULT_SYSTEM)]
        system: String,
        /// Seconds before a request is abandoned (then retried).
        #[arg(long, default_value_t = 120)]
        timeout_secs: u64,
        /// Further attempts after a 429, a 5xx or a connection failure.
        #[arg(long, default_value_t = 3)]
        retries: u32,
        /// Query type rules for rows without a "type": TYPE=phrase|phrase;…
        #[arg(long, default_value = eval::classify::DEFAULT_RULES)]
        query_types: String,
        /// Exit with status 3 when a regression is flagged.
        #[arg(long)]
        fail_on_regression: bool,
        /// Configuration file (for the models home that holds the results file).
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Print accuracy over time per target from the results file, and chart it.
    Report {
        /// The results file (default: <models home>/evals/runs.jsonl).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Only the runs of this golden file (by content).
        #[arg(long)]
        golden: Option<PathBuf>,
        /// Write a PNG chart of accuracy over time here.
        #[arg(long)]
        chart: Option<PathBuf>,
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn results_file(out: Option<PathBuf>, config: Option<&Path>) -> Result<PathBuf, String> {
    if let Some(out) = out {
        return Ok(out);
    }
    let config = Config::load(config).map_err(|e| e.to_string())?;
    let store = floodgate_gateway::model_cache::model_store(&config);
    Ok(eval::default_results_file(store.root()))
}

pub async fn run(command: EvalCommand) -> ExitCode {
    let result = match command {
        EvalCommand::Run {
            golden,
            target,
            baseline,
            limit,
            judge,
            judge_qa,
            server,
            key,
            out,
            concurrency,
            max_tokens,
            judge_max_tokens,
            system,
            timeout_secs,
            retries,
            query_types,
            fail_on_regression,
            config,
        } => {
            let opts = QueryClassifier::parse(&query_types).and_then(|classifier| {
                Ok(eval::RunOptions {
                    goldens: golden,
                    targets: target,
                    baseline,
                    limit,
                    judge,
                    judge_qa,
                    client: ClientOptions {
                        server,
                        key,
                        timeout: Duration::from_secs(timeout_secs.max(1)),
                        retries,
                    },
                    concurrency,
                    max_tokens,
                    judge_max_tokens,
                    system,
                    classifier,
                    out: results_file(out, config.as_deref())?,
                })
            });
            match opts {
                Ok(opts) => run_eval(&opts, fail_on_regression, config.as_deref()).await,
                Err(e) => Err(e),
            }
        }
        EvalCommand::Report {
            out,
            golden,
            chart,
            config,
        } => results_file(out, config.as_deref())
            .and_then(|out| eval::report(&out, golden.as_deref(), chart.as_deref()))
            .map(|text| {
                print!("{text}");
                ExitCode::SUCCESS
            }),
    };
    result.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}

async fn run_eval(
    opts: &eval::RunOptions,
    fail_on_regression: bool,
    config: Option<&Path>,
) -> Result<ExitCode, String> {
    let runs = eval::run(opts).await?;
    store_runs(&runs, config).await;
    for run in &runs {
        println!("{}", eval::report::render_run(run));
    }
    print!("{}", eval::report::render_verdicts(&runs));
    let regressions = runs
        .iter()
        .flat_map(|r| &r.comparisons)
        .filter(|c| c.regression)
        .count();
    println!(
        "{regressions} regression(s); results appended to {}",
        opts.out.display()
    );
    Ok(if regressions > 0 && fail_on_regression {
        ExitCode::from(REGRESSION_EXIT)
    } else {
        ExitCode::SUCCESS
    })
}

/// Stores each run's summary in the analytics store of the configuration (what the
/// dashboard's Evaluation section and `floodgate_eval_accuracy` read); the results
/// file stays the full record. A store that cannot be opened is reported, not fatal.
async fn store_runs(runs: &[eval::record::RunRecord], config: Option<&Path>) {
    let stores = match Config::load(config) {
        Ok(c) => floodgate_gateway::store::Stores::open(&c)
            .await
            .map_err(|e| format!("{e:#}")),
        Err(e) => Err(e.to_string()),
    };
    let analytics = match stores {
        Ok(s) => s.analytics,
        Err(e) => {
            eprintln!(
                "note: runs not stored in the analytics store ({e}); they are in the results file"
            );
            return;
        }
    };
    for run in runs {
        let golden = Path::new(&run.golden.path).file_stem().map_or_else(
            || run.golden.path.clone(),
            |s| s.to_string_lossy().into_owned(),
        );
        let a = &run.summary.accuracy;
        let record = floodgate_gateway::analytics::EvalRunRecord {
            id: run.run_id.clone(),
            created_at: i64::try_from(run.unix_time).unwrap_or(i64::MAX),
            target: run.target.clone(),
            golden,
            n: i64::try_from(a.n).unwrap_or(i64::MAX),
            accuracy: (a.n > 0).then_some(a.rate),
            accuracy_low: (a.n > 0).then_some(a.low),
            accuracy_high: (a.n > 0).then_some(a.high),
            regression: run.regressed(),
            run: serde_json::json!({
                "summary": run.summary,
                "slices": run.slices,
                "comparisons": run.comparisons,
                "judge": run.judge,
                "server": run.server,
            }),
        };
        if let Err(e) = analytics.put_eval_run(&record).await {
            eprintln!(
                "note: run {} not stored in the analytics store: {e}",
                run.run_id
            );
        }
    }
}

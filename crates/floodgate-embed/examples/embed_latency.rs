//! Single-prompt embedding latency of all-MiniLM-L6-v2 on this machine: p50
//! and p99 per prompt, for prompts of about 20, 100 and 300 words (and one
//! word, which shows the fixed cost per call), at several
//! token budgets and thread counts. The guard's whole budget (normalise +
//! rules + classifier) is 5 ms at p99; this shows what the encoder costs.
//!
//!     cargo run --release -p floodgate-embed --example embed_latency -- [--model-dir DIR]
//!
//! The model comes from `--model-dir`, else from the model cache (`$FLOODGATE_HOME`, else
//! the user's data directory; `floodgate models pull all-minilm-l6-v2` fills it).
//! Options: `--max-tokens 32,64,128,256` `--threads 1,2` `--iterations 100`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use floodgate_embed::{EmbedOptions, Embedder, Truncation};
use floodgate_models::ModelStore;

const WORDS: &str = "the committee reviewed the quarterly report and asked the engineering \
team to explain why the deployment schedule slipped by two weeks while the support queue \
kept growing and customers waited longer for answers about billing errors and missing \
features that had been promised in the spring roadmap before the budget was cut";

fn prompt(words: usize) -> String {
    WORDS
        .split(' ')
        .cycle()
        .take(words)
        .collect::<Vec<_>>()
        .join(" ")
}

fn list(args: &[String], flag: &str, default: &[usize]) -> Vec<usize> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| default.to_vec())
}

/// CPU seconds this process has used (user + system), from /proc; `None`
/// off Linux. Clock ticks are assumed to be 100 per second (USER_HZ on every
/// mainstream Linux). On a shared machine wall-clock percentiles include time
/// spent waiting for a core; CPU time per call does not.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields overall.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let max_tokens = list(&args, "--max-tokens", &[32, 64, 128, 256]);
    let threads = list(&args, "--threads", &[1, 2]);
    let iterations = list(&args, "--iterations", &[100])[0].max(1);
    let dir = match args.iter().position(|a| a == "--model-dir") {
        Some(i) => PathBuf::from(args.get(i + 1).ok_or("--model-dir needs a directory")?),
        None => ModelStore::new(ModelStore::default_root())
            .model_path("all-minilm-l6-v2")
            .parent()
            .ok_or("the model cache has no directory for all-minilm-l6-v2")?
            .to_path_buf(),
    };
    println!(
        "all-MiniLM-L6-v2 from {}; {} CPUs; {iterations} runs each after 5 warm-up runs",
        dir.display(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    println!(
        "| threads | max_tokens | words | tokens seen | tokenize p50 ms | embed p50 ms | embed p99 ms | CPU ms/call |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &t in &threads {
        for &m in &max_tokens {
            let embedder = Embedder::load(
                &dir,
                EmbedOptions {
                    threads: Some(t),
                    truncation: Truncation::HeadAndTail,
                    ..EmbedOptions::default().with_max_tokens(m)
                },
            )?;
            for words in [1, 20, 100, 300] {
                let text = prompt(words);
                let seen = embedder.token_ids(&text)?.len();
                let mut tokenize = Vec::with_capacity(iterations);
                let mut embed = Vec::with_capacity(iterations);
                let mut cpu_start = None;
                for i in 0..iterations + 5 {
                    if i == 5 {
                        cpu_start = cpu_seconds();
                    }
                    let start = Instant::now();
                    std::hint::black_box(embedder.token_ids(&text)?);
                    let tokenized = start.elapsed();
                    let start = Instant::now();
                    std::hint::black_box(embedder.embed_one(&text)?);
                    if i >= 5 {
                        tokenize.push(tokenized);
                        embed.push(start.elapsed());
                    }
                }
                let cpu = match (cpu_start, cpu_seconds()) {
                    (Some(a), Some(b)) => format!("{:.1}", (b - a) * 1e3 / iterations as f64),
                    _ => "-".into(),
                };
                tokenize.sort();
                embed.sort();
                println!(
                    "| {t} | {m} | {words} | {seen} | {:.3} | {:.2} | {:.2} | {cpu} |",
                    percentile(&tokenize, 0.5),
                    percentile(&embed, 0.5),
                    percentile(&embed, 0.99)
                );
            }
        }
    }
    Ok(())
}

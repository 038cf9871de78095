//! Trains the guard classifiers (prompt injection, toxicity) on MiniLM
//! embeddings and prints their figures on the held-out dev sets.
//!
//!     FLOODGATE_HOME=/var/cache/floodgate cargo run --release -p floodgate-embed --example train_eval -- \
//!         [--train-dir data/guard] [--dev-dir /work/shared/data] [--out target/guard-models]
//!         [--max-tokens 128] [--l2 0.001,0.01,0.1,1]
//!
//! For each task it trains on `<train-dir>/<task>.train.jsonl` and evaluates
//! on `<train-dir>/<task>.heldout.jsonl` (same distribution, if present) and
//! on `<dev-dir>/<task>.dev.jsonl` (other sources). The dev sets are for
//! evaluation only.
//! When a training file is missing it falls back to 5-fold cross-validation
//! on the dev set, which only shows that the pipeline runs: those figures are
//! not an estimate of anything, and it says so.

use std::path::{Path, PathBuf};
use std::time::Instant;

use floodgate_embed::classifier::{self, embed_labeled, read_jsonl, train_from_jsonl, Metrics};
use floodgate_embed::{EmbedOptions, Embedder, TrainOptions, Truncation};

fn arg(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .position(|a| a == flag)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

fn print_metrics(what: &str, metrics: &[Metrics]) {
    for m in metrics {
        println!(
            "  {what:<34} {:<10} n={:<5} pos={:<5} thr={:<6.3} P={:.3} R={:.3} F1={:.3} FPR={:.3} AUC={:.3}  (tp {} fp {} tn {} fn {})",
            m.label,
            m.examples,
            m.positives,
            m.threshold,
            m.precision,
            m.recall,
            m.f1,
            m.fpr,
            m.auc,
            m.true_positives,
            m.false_positives,
            m.true_negatives,
            m.false_negatives
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let workspace = workspace.canonicalize().unwrap_or(workspace);
    let train_dir =
        arg(&args, "--train-dir").map_or_else(|| workspace.join("data/guard"), PathBuf::from);
    let dev_dir =
        arg(&args, "--dev-dir").map_or_else(|| PathBuf::from("/work/shared/data"), PathBuf::from);
    let out_dir =
        arg(&args, "--out").map_or_else(|| workspace.join("target/guard-models"), PathBuf::from);
    let max_tokens: usize = arg(&args, "--max-tokens")
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    let home = std::env::var_os("FLOODGATE_HOME")
        .filter(|h| !h.is_empty())
        .map_or_else(|| PathBuf::from("/var/cache/floodgate"), PathBuf::from);
    let embedder = Embedder::load(
        &home.join("models/all-minilm-l6-v2"),
        EmbedOptions {
            truncation: Truncation::HeadAndTail,
            ..EmbedOptions::default().with_max_tokens(max_tokens)
        },
    )?;
    let l2_grid: Vec<f64> = arg(&args, "--l2")
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![0.001, 0.01, 0.1, 1.0]);
    let opts = TrainOptions::default();
    println!(
        "embedder: {} max_tokens={max_tokens} head+tail; l2={} class weights {:?}; threshold {:?}",
        embedder.name(),
        opts.l2,
        opts.class_weight,
        opts.threshold
    );
    std::fs::create_dir_all(&out_dir)?;

    for task in ["injection", "toxicity"] {
        let train_path = train_dir.join(format!("{task}.train.jsonl"));
        let dev_path = dev_dir.join(format!("{task}.dev.jsonl"));
        println!("\n== {task}");
        let dev_rows = read_jsonl(&dev_path)?;
        let dev = embed_labeled(&embedder, &dev_rows)?;
        if train_path.exists() {
            let started = Instant::now();
            // Pick the L2 penalty by 5-fold cross-validated AUC on the
            // training set alone; the dev set plays no part in any choice.
            let train_rows = embed_labeled(&embedder, &read_jsonl(&train_path)?)?;
            let mut best = (f64::NEG_INFINITY, opts.l2);
            for &l2 in &l2_grid {
                let cv = classifier::cross_validate(
                    &train_rows,
                    &TrainOptions { l2, ..opts.clone() },
                    5,
                )?;
                let auc = cv.iter().map(|m| m.auc).sum::<f64>() / cv.len() as f64;
                println!(
                    "  l2={l2:<8} train 5-fold CV AUC={auc:.4} F1={:.3}",
                    cv[0].f1
                );
                if auc > best.0 {
                    best = (auc, l2);
                }
            }
            let opts = TrainOptions {
                l2: best.1,
                ..opts.clone()
            };
            println!("  chose l2={}", opts.l2);
            let model = train_from_jsonl(&[&train_path], &embedder, &opts)?;
            println!(
                "trained on {} ({} rows: {:?}) in {:.1}s; sources {:?}",
                train_path.display(),
                model.meta.examples,
                model.meta.label_counts,
                started.elapsed().as_secs_f64(),
                model.meta.sources
            );
            print_metrics("train, 5-fold out-of-fold:", &model.meta.cross_validation);
            // The training data's own held-out split (same distribution), if
            // whoever built it left one.
            let heldout_path = train_dir.join(format!("{task}.heldout.jsonl"));
            if heldout_path.exists() {
                let heldout = embed_labeled(&embedder, &read_jsonl(&heldout_path)?)?;
                let metrics = classifier::evaluate(&model, &heldout)?;
                print_metrics(
                    &format!("{task}.heldout ({} rows):", heldout.len()),
                    &metrics,
                );
            }
            let metrics = classifier::evaluate(&model, &dev)?;
            print_metrics(&format!("dev ({} rows, held out):", dev.len()), &metrics);
            let path = out_dir.join(format!("{task}.json"));
            model.save(&path)?;
            println!("model written to {}", path.display());
        } else {
            println!(
                "NOTE: {} not found. Running 5-fold cross-validation ON THE DEV SET only to check \
                 that the pipeline works; these figures are NOT a valid estimate (tiny set, and the \
                 dev set must stay held out for the real evaluation).",
                train_path.display()
            );
            let metrics = classifier::cross_validate(&dev, &opts, 5)?;
            print_metrics("dev 5-fold CV (sanity only):", &metrics);
        }
    }
    Ok(())
}

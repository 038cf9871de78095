//! Experiment: does fine-tuning all-MiniLM-L6-v2 end to end (encoder + logistic head)
//! separate a labelled set better than a frozen-embedding head? Stratified k-fold
//! cross-validation on one JSONL file (`{"text", "label"}`), each fold trained on the other
//! folds plus any extra training files; prints P/R/F1/FPR over the out-of-fold predictions.
//! The training code is the library's (`floodgate_embed::finetune`), the one
//! `floodgate guard train --toxicity-finetune` runs.
//!
//! ```text
//! cargo run --release -p floodgate-embed --example finetune_cv -- \
//!   MODEL_DIR CV_FILE POSITIVE_LABEL [--train FILE]... [--folds 5] [--epochs 3] \
//!   [--lr 3e-5] [--head-lr 1e-3] [--max-tokens 64] [--batch 16] [--scores OUT.jsonl]
//! ```
//! `--scores` writes each CV row's out-of-fold probability (`{"text", "label", "score"}`),
//! to combine with other layers offline.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::time::Instant;

use floodgate_embed::classifier::{metrics_at, read_jsonl};
use floodgate_embed::finetune::{cross_validate, Example, FinetuneOptions};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (dir, cv_file, positive) = (PathBuf::from(&args[0]), PathBuf::from(&args[1]), &args[2]);
    let opt = |name: &str, default: &str| -> String {
        args.iter()
            .position(|a| a == name)
            .map_or(default.to_string(), |i| args[i + 1].clone())
    };
    let trains: Vec<PathBuf> = args
        .iter()
        .enumerate()
        .filter(|(_, a)| *a == "--train")
        .map(|(i, _)| PathBuf::from(&args[i + 1]))
        .collect();
    let d = FinetuneOptions::default();
    let opts = FinetuneOptions {
        epochs: opt("--epochs", &d.epochs.to_string()).parse().unwrap(),
        lr: opt("--lr", &d.lr.to_string()).parse().unwrap(),
        head_lr: opt("--head-lr", &d.head_lr.to_string()).parse().unwrap(),
        max_tokens: opt("--max-tokens", &d.max_tokens.to_string())
            .parse()
            .unwrap(),
        batch: opt("--batch", &d.batch.to_string()).parse().unwrap(),
        seed: d.seed,
    };
    let folds: usize = opt("--folds", "5").parse().unwrap();
    let scores_out = opt("--scores", "");

    let cv_rows = read_jsonl(&cv_file).unwrap();
    let extra_rows: Vec<_> = trains.iter().flat_map(|p| read_jsonl(p).unwrap()).collect();
    fn example<'a>(r: &'a floodgate_embed::classifier::LabeledText, positive: &str) -> Example<'a> {
        Example {
            text: r.text.as_str(),
            positive: r.label == positive,
        }
    }
    let cv: Vec<Example> = cv_rows.iter().map(|r| example(r, positive)).collect();
    let extra: Vec<Example> = extra_rows.iter().map(|r| example(r, positive)).collect();
    eprintln!(
        "cv rows {}, extra training rows {}, folds {folds}, {opts:?}",
        cv.len(),
        extra.len()
    );
    let started = Instant::now();
    let scores = cross_validate(&dir, &cv, &extra, folds, &opts, &mut |f, e, loss| {
        eprintln!(
            "fold {f} epoch {e}: loss {loss:.4} ({:.0} s)",
            started.elapsed().as_secs_f64()
        );
    })
    .unwrap();
    let labels: Vec<bool> = cv.iter().map(|e| e.positive).collect();
    for threshold in [0.3f32, 0.4, 0.5, 0.6, 0.7, 0.8] {
        let m = metrics_at(positive, &scores, &labels, threshold);
        println!(
            "threshold {threshold:.1}: P {:.3} R {:.3} F1 {:.3} FPR {:.3}",
            m.precision, m.recall, m.f1, m.fpr
        );
    }
    if !scores_out.is_empty() {
        let lines: Vec<String> = cv
            .iter()
            .zip(&scores)
            .map(|(r, s)| {
                serde_json::json!({"text": r.text, "label": f32::from(u8::from(r.positive)), "score": s})
                    .to_string()
            })
            .collect();
        std::fs::write(&scores_out, lines.join("\n") + "\n").unwrap();
    }
    eprintln!("done in {:.0} s", started.elapsed().as_secs_f64());
}

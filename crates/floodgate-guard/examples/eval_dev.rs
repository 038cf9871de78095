//! Scores the rule layers on the development sets and prints precision, recall, F1 and
//! false-positive rate at a few thresholds.
//!
//! ```sh
//! cargo run --release -p floodgate-guard --example eval_dev -- DATA_DIR [--misses] [--scores FILE]
//! ```
//! DATA_DIR holds `injection.dev.jsonl` and `toxicity.dev.jsonl`.
//! `--misses` also lists the rows each layer gets wrong at 0.5, for tuning; `--scores FILE`
//! writes every toxicity row's rule score (`{"text", "label", "score"}`) to combine offline.

use std::path::Path;

use floodgate_guard::injection::InjectionRules;
use floodgate_guard::normalize::normalize;
use floodgate_guard::toxicity::ToxicityRules;

const THRESHOLDS: [f32; 5] = [0.3, 0.4, 0.5, 0.6, 0.7];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args
        .iter()
        .enumerate()
        .find(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--scores"))
        .map(|(_, a)| a.as_str())
        .ok_or("usage: eval_dev DATA_DIR [--misses] [--scores FILE]")?;
    let show_misses = args.iter().any(|a| a == "--misses");

    let injection = InjectionRules::new()?;
    let rows = load(&Path::new(dir).join("injection.dev.jsonl"), "injection")?;
    let scored: Vec<(f32, bool, String)> = rows
        .into_iter()
        .map(|(text, positive)| (injection.score(&normalize(&text)).score, positive, text))
        .collect();
    report("injection rules", &scored, show_misses);

    let toxicity = ToxicityRules::new()?;
    let rows = load(&Path::new(dir).join("toxicity.dev.jsonl"), "toxic")?;
    let scored: Vec<(f32, bool, String)> = rows
        .into_iter()
        .map(|(text, positive)| (toxicity.score(&normalize(&text)).max(), positive, text))
        .collect();
    report("toxicity rules (max over categories)", &scored, show_misses);
    if let Some(i) = args.iter().position(|a| a == "--scores") {
        let out = args.get(i + 1).ok_or("--scores needs a file")?;
        let lines: Vec<String> = scored
            .iter()
            .map(|(s, p, t)| {
                serde_json::json!({"text": t, "label": f32::from(u8::from(*p)), "score": s})
                    .to_string()
            })
            .collect();
        std::fs::write(out, lines.join("\n") + "\n")?;
    }
    Ok(())
}

fn load(
    path: &Path,
    positive_label: &str,
) -> Result<Vec<(String, bool)>, Box<dyn std::error::Error>> {
    let mut rows = Vec::new();
    for line in std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let v: serde_json::Value = serde_json::from_str(line)?;
        let text = v["text"].as_str().unwrap_or_default().to_owned();
        rows.push((text, v["label"].as_str() == Some(positive_label)));
    }
    Ok(rows)
}

fn report(name: &str, scored: &[(f32, bool, String)], show_misses: bool) {
    let positives = scored.iter().filter(|r| r.1).count();
    println!("\n{name}: {} rows, {positives} positive", scored.len());
    println!("| threshold | precision | recall | F1 | FPR | TP | FP | FN | TN |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for t in THRESHOLDS {
        let (mut tp, mut fp, mut fn_, mut tn) = (0usize, 0usize, 0usize, 0usize);
        for (score, positive, _) in scored {
            match (*score >= t, *positive) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fn_ += 1,
                (false, false) => tn += 1,
            }
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        let precision = ratio(tp, tp + fp);
        let recall = ratio(tp, tp + fn_);
        let f1 = if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        };
        let fpr = ratio(fp, fp + tn);
        println!("| {t:.1} | {precision:.3} | {recall:.3} | {f1:.3} | {fpr:.3} | {tp} | {fp} | {fn_} | {tn} |");
    }
    if show_misses {
        for (score, positive, text) in scored {
            if (*score >= 0.5) != *positive {
                let kind = if *positive { "FN" } else { "FP" };
                let short: String = text.chars().take(140).collect();
                println!("{kind} {score:.2} {short:?}");
            }
        }
    }
}

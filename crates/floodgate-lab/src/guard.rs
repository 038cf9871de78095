//! `floodgate guard train|eval`: the guard's learned layer and its measurement.
//!
//! `train` embeds labelled JSONL (`{"text", "label"}`) with a static token table distilled
//! from all-MiniLM-L6-v2 (or the full encoder), adds word n-gram features for injection, and
//! fits the injection and toxicity heads into `guard.classifier_dir`, where the server picks them
//! up at start; with `--toxicity-finetune` it also fine-tunes the encoder itself for toxicity
//! (`floodgate_embed::finetune`) and installs it there as `toxicity-finetuned/`. `eval` scores labelled files through the same `Guard` the server runs —
//! rules alone and rules + classifier — optionally on obfuscated copies of every row,
//! and prints precision, recall, F1, false-positive rate and per-text latency.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use clap::Subcommand;
use floodgate_embed::classifier::{
    assign_folds, metrics_at, read_jsonl, train as train_classifier, train_from_jsonl,
    EmbeddingInfo, LabeledText, Metrics, ThresholdRule,
};
use floodgate_embed::finetune::{
    best_f1_threshold, cross_validate, Example, FinetuneOptions, FinetunedClassifier,
};
use floodgate_embed::ngrams::{NgramFeatures, WithNgrams};
use floodgate_embed::{
    EmbedOptions, Embedder, StaticEmbedder, TextEncoder, TrainOptions, Truncation,
};
use floodgate_gateway::config::Config;
use floodgate_gateway::guard::{Guard, LearnedScorer};
use floodgate_gateway::learned::{
    classifier_dir, embedder_dir, probe_embedder, EmbeddingScorer, FINETUNED_TOXICITY_DIR,
    PROBE_TRUNCATION, STATIC_TABLE_FILE, TOXICITY_PROBE_FILE,
};

#[derive(Subcommand)]
pub enum GuardCommand {
    /// Train the embedding classifiers on labelled JSONL files.
    Train {
        /// Directory with injection.train.jsonl and toxicity.train.jsonl.
        #[arg(long, default_value = "data/guard")]
        data: PathBuf,
        /// Where to write injection.json / toxicity.json (default: guard.classifier_dir).
        #[arg(long)]
        out: Option<PathBuf>,
        /// What the heads read: `static` (token vectors distilled from MiniLM, IDF-weighted;
        /// microseconds per text) or `minilm` (the full encoder; 8–70 ms per text on 2 cores).
        #[arg(long, default_value = "static", value_parser = ["static", "minilm"])]
        encoder: String,
        /// Word n-grams (chosen by χ²) the injection head reads beside the embedding; 0 = none.
        #[arg(long, default_value_t = 1024)]
        injection_ngrams: usize,
        /// Each head's threshold is the lowest whose out-of-fold false-positive rate on the
        /// training data stays within this.
        #[arg(long, default_value_t = 0.03)]
        max_fpr: f64,
        /// Also fine-tune all-MiniLM-L6-v2 end to end on toxicity.train.jsonl (plus
        /// --toxicity-extra) and install it as `toxicity-finetuned/`, which /v1/moderations
        /// then uses (and the output guard, with `guard.finetuned_toxicity_output`). About
        /// 2 minutes per epoch for 877 rows on 2 cores.
        #[arg(long)]
        toxicity_finetune: bool,
        /// More labelled toxicity files for the fine-tuned model, e.g. the development set.
        /// With --finetune-folds, these are the rows the threshold is cross-validated on.
        #[arg(long = "toxicity-extra")]
        toxicity_extra: Vec<PathBuf>,
        #[arg(long, default_value_t = 3)]
        finetune_epochs: usize,
        /// Choose the fine-tuned model's threshold by best out-of-fold F1 in k-fold
        /// cross-validation (k more trainings); 0 = use --finetune-threshold.
        #[arg(long, default_value_t = 0)]
        finetune_folds: usize,
        /// The fine-tuned model's threshold when it is not cross-validated.
        #[arg(long, default_value_t = 0.5)]
        finetune_threshold: f32,
        /// Also train a toxicity probe on this cached generative model (e.g. `gemma3-270m`):
        /// a logistic head over the mean of its last hidden layer, trained on
        /// toxicity.train.jsonl plus --toxicity-extra and installed as `toxicity-probe.json`.
        /// About 0.15 s per training row for Gemma-3-270M on 2 cores.
        #[arg(long, value_name = "MODEL")]
        toxicity_probe: Option<String>,
        /// L2 strength of the probe's head (on standardised features).
        #[arg(long, default_value_t = 0.1)]
        probe_l2: f64,
        /// Tokens of each text the probe reads (the first ones).
        #[arg(long, default_value_t = 256)]
        probe_max_tokens: usize,
        /// Choose the probe's threshold by best out-of-fold F1 in k-fold cross-validation on
        /// the --toxicity-extra rows (else the training file), each fold also trained on the
        /// other rows; 0 = threshold 0.5.
        #[arg(long, default_value_t = 5)]
        probe_folds: usize,
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
    },
    /// Measure the guard on labelled JSONL files (labels injection/benign or toxic/ok).
    Eval {
        /// Labelled files to score.
        #[arg(long = "file", required = true)]
        files: Vec<PathBuf>,
        /// Also score obfuscated copies of every row (base64, hex, rot13, reversed,
        /// leetspeak, zero-width, homoglyphs, full-width).
        #[arg(long)]
        obfuscate: bool,
        #[arg(long, env = "FLOODGATE_CONFIG")]
        config: Option<PathBuf>,
    },
}

fn fail(e: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {e}");
    ExitCode::FAILURE
}

pub async fn run(command: GuardCommand) -> ExitCode {
    let result = tokio::task::spawn_blocking(move || match command {
        GuardCommand::Train {
            data,
            out,
            encoder,
            injection_ngrams,
            max_fpr,
            toxicity_finetune,
            toxicity_extra,
            finetune_epochs,
            finetune_folds,
            finetune_threshold,
            toxicity_probe,
            probe_l2,
            probe_max_tokens,
            probe_folds,
            config,
        } => {
            let out = train(
                data.clone(),
                out,
                &encoder,
                injection_ngrams,
                max_fpr,
                config.clone(),
            )?;
            if toxicity_finetune {
                let cfg = load_config(config.clone())?;
                finetune_toxicity(
                    &cfg,
                    &data,
                    &toxicity_extra,
                    &out,
                    finetune_epochs,
                    finetune_folds,
                    finetune_threshold,
                )?;
            }
            if let Some(model) = toxicity_probe {
                let cfg = load_config(config)?;
                let settings = ProbeSettings {
                    model,
                    l2: probe_l2,
                    max_tokens: probe_max_tokens,
                    folds: probe_folds,
                };
                train_toxicity_probe(&cfg, &data, &toxicity_extra, &out, &settings)?;
            }
            Ok(())
        }
        GuardCommand::Eval {
            files,
            obfuscate,
            config,
        } => eval(files, obfuscate, config),
    })
    .await;
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(code)) => code,
        Err(e) => fail(e),
    }
}

fn load_config(path: Option<PathBuf>) -> Result<Config, ExitCode> {
    Config::load(path.as_deref()).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })
}

fn train(
    data: PathBuf,
    out: Option<PathBuf>,
    encoder: &str,
    injection_ngrams: usize,
    max_fpr: f64,
    config: Option<PathBuf>,
) -> Result<PathBuf, ExitCode> {
    let config = load_config(config)?;
    let dir = embedder_dir(&config);
    let embedder = Embedder::load(
        &dir,
        EmbedOptions {
            truncation: Truncation::HeadAndTail,
            ..EmbedOptions::default().with_max_tokens(128)
        },
    )
    .map_err(|e| {
        fail(format!(
            "{e}\n(the embedding model is not cached: run `floodgate models pull all-minilm-l6-v2`)"
        ))
    })?;
    let out = out.unwrap_or_else(|| classifier_dir(&config));
    std::fs::create_dir_all(&out).map_err(fail)?;
    let tasks = ["injection", "toxicity"];
    let encoder: Box<dyn TextEncoder> = if encoder == "static" {
        Box::new(static_encoder(&embedder, &dir, &data, &tasks, &out)?)
    } else {
        Box::new(embedder)
    };
    // L2 strengths and n-gram counts chosen by cross-validation on the training data
    // and the development sets (word n-grams help injection, not ToxiGen-style toxicity).
    for (task, l2, ngram_count) in [("injection", 0.03, injection_ngrams), ("toxicity", 0.1, 0)] {
        let path = data.join(format!("{task}.train.jsonl"));
        if !path.exists() {
            eprintln!("skipping {task}: {} not found", path.display());
            continue;
        }
        let started = Instant::now();
        let negatives = TrainOptions::default().negative_labels;
        let rows = read_jsonl(&path).map_err(fail)?;
        let texts: Vec<&str> = rows.iter().map(|r| r.text.as_str()).collect();
        let positive: Vec<bool> = rows.iter().map(|r| !negatives.contains(&r.label)).collect();
        let ngrams = NgramFeatures::select(&texts, &positive, ngram_count, 2);
        let opts = TrainOptions {
            l2,
            feature_names: ngrams.feature_names(),
            // A blocked benign prompt costs a user; the guard's target is FPR ≤ 3%.
            threshold: ThresholdRule::MaxFpr { max_fpr, folds: 5 },
            ..TrainOptions::default()
        };
        let with_ngrams = WithNgrams {
            inner: encoder.as_ref(),
            ngrams,
        };
        let model = train_from_jsonl(&[&path], &with_ngrams, &opts).map_err(fail)?;
        let dest = out.join(format!("{task}.json"));
        model.save(&dest).map_err(fail)?;
        println!(
            "{task}: {} rows {:?} → {} in {:.1} s",
            model.meta.examples,
            model.meta.label_counts,
            dest.display(),
            started.elapsed().as_secs_f64()
        );
        for m in &model.meta.cross_validation {
            println!(
                "  5-fold out-of-fold on the training data: {} at threshold {:.3}",
                metrics_line(m),
                m.threshold
            );
        }
    }
    Ok(out)
}

/// Fine-tunes MiniLM on the toxicity rows and installs it as `toxicity-finetuned/` in `out`.
fn finetune_toxicity(
    config: &Config,
    data: &std::path::Path,
    extra: &[PathBuf],
    out: &std::path::Path,
    epochs: usize,
    folds: usize,
    threshold: f32,
) -> Result<(), ExitCode> {
    let base = embedder_dir(config);
    let train_path = data.join("toxicity.train.jsonl");
    let train_rows = read_jsonl(&train_path).map_err(fail)?;
    let mut extra_rows = Vec::new();
    for p in extra {
        extra_rows.extend(read_jsonl(p).map_err(fail)?);
    }
    let negatives = TrainOptions::default().negative_labels;
    let train_ex: Vec<Example<'_>> = train_rows
        .iter()
        .map(|r| Example::of(r, &negatives))
        .collect();
    let extra_ex: Vec<Example<'_>> = extra_rows
        .iter()
        .map(|r| Example::of(r, &negatives))
        .collect();
    let opts = FinetuneOptions {
        epochs,
        ..FinetuneOptions::default()
    };
    let started = Instant::now();
    let log = |fold: Option<usize>, epoch: usize, loss: f32| {
        let what = fold.map_or_else(|| "final model".to_string(), |f| format!("fold {f}"));
        eprintln!(
            "toxicity fine-tune, {what}, epoch {}/{epochs}: loss {loss:.4} ({:.0} s)",
            epoch + 1,
            started.elapsed().as_secs_f64()
        );
    };
    if !(0.0..=1.0).contains(&threshold) {
        return Err(fail("--finetune-threshold must be between 0 and 1"));
    }
    let mut cv = None;
    if folds > 0 {
        // The rows the threshold is judged on: the extra files when given (the development
        // set), else the training file; the other rows train every fold.
        let (rows, rest) = if extra_ex.is_empty() {
            (&train_ex, &extra_ex)
        } else {
            (&extra_ex, &train_ex)
        };
        let scores = cross_validate(&base, rows, rest, folds, &opts, &mut |f, e, l| {
            log(Some(f), e, l)
        })
        .map_err(fail)?;
        let labels: Vec<bool> = rows.iter().map(|e| e.positive).collect();
        let (t, m) = best_f1_threshold("toxic", &scores, &labels);
        println!(
            "toxicity fine-tune, {folds}-fold out-of-fold on {} rows: {} at threshold {t:.2}",
            rows.len(),
            metrics_line(&m)
        );
        cv = Some((t, m));
    }
    let all: Vec<Example<'_>> = train_ex.iter().chain(&extra_ex).copied().collect();
    let mut model =
        FinetunedClassifier::train(&base, &all, "toxic", &opts, &mut |e, l| log(None, e, l))
            .map_err(|e| {
                fail(format!(
            "{e}\n(the embedding model is not cached: run `floodgate models pull all-minilm-l6-v2`)"
        ))
            })?;
    match cv {
        Some((t, m)) => model.set_threshold(t, Some(m)),
        None => model.set_threshold(threshold, None),
    }
    let dest = out.join(FINETUNED_TOXICITY_DIR);
    // Written next to the destination and renamed, so a running server never sees half a model.
    let staging = out.join(format!(".{FINETUNED_TOXICITY_DIR}.tmp"));
    let _ = std::fs::remove_dir_all(&staging);
    model.save(&staging).map_err(fail)?;
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::rename(&staging, &dest).map_err(fail)?;
    println!(
        "toxicity fine-tuned: {} rows → {} (threshold {:.2}) in {:.0} s",
        all.len(),
        dest.display(),
        model.meta().threshold,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Precision, recall, F1, false-positive rate and AUC, as the training commands print them.
fn metrics_line(m: &Metrics) -> String {
    format!(
        "P={:.3} R={:.3} F1={:.3} FPR={:.3} AUC={:.3}",
        m.precision, m.recall, m.f1, m.fpr, m.auc
    )
}

struct ProbeSettings {
    model: String,
    l2: f64,
    max_tokens: usize,
    folds: usize,
}

/// Trains the language-model toxicity probe and installs it as `toxicity-probe.json` in `out`.
fn train_toxicity_probe(
    config: &Config,
    data: &std::path::Path,
    extra: &[PathBuf],
    out: &std::path::Path,
    settings: &ProbeSettings,
) -> Result<(), ExitCode> {
    let started = Instant::now();
    let train_rows = read_jsonl(&data.join("toxicity.train.jsonl")).map_err(fail)?;
    let mut extra_rows = Vec::new();
    for p in extra {
        extra_rows.extend(read_jsonl(p).map_err(fail)?);
    }
    let mut info = EmbeddingInfo {
        model: settings.model.clone(),
        dim: 0,
        max_tokens: settings.max_tokens,
        truncation: PROBE_TRUNCATION.into(),
    };
    let embedder = probe_embedder(config, &info).map_err(fail)?;
    info.dim = embedder.dim();
    let negatives = TrainOptions::default().negative_labels;
    let embed = |rows: &[LabeledText], what: &str| -> Result<Vec<(Vec<f32>, String)>, ExitCode> {
        let mut out = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(32) {
            let texts: Vec<&str> = chunk.iter().map(|r| r.text.as_str()).collect();
            let vectors = embedder.embed(&texts).map_err(fail)?;
            for (v, r) in vectors.into_iter().zip(chunk) {
                let label = if negatives.contains(&r.label) {
                    "ok"
                } else {
                    "toxic"
                };
                out.push((v, label.to_string()));
            }
            eprintln!(
                "toxicity probe: {what} {}/{} rows read by {} ({:.0} s)",
                out.len(),
                rows.len(),
                settings.model,
                started.elapsed().as_secs_f64()
            );
        }
        Ok(out)
    };
    let train_ex = embed(&train_rows, "training file")?;
    let extra_ex = embed(&extra_rows, "extra files")?;
    let opts = TrainOptions {
        l2: settings.l2,
        threshold: ThresholdRule::Fixed { threshold: 0.5 },
        ..TrainOptions::default()
    };
    let mut cv = None;
    if settings.folds > 0 {
        // Judged on the extra rows when given (the development set), else on the training
        // file; every fold also trains on the other rows.
        let (judged, rest) = if extra_ex.is_empty() {
            (&train_ex, &extra_ex)
        } else {
            (&extra_ex, &train_ex)
        };
        let labels: Vec<&str> = judged.iter().map(|(_, l)| l.as_str()).collect();
        let fold_of = assign_folds(&labels, settings.folds, opts.seed).map_err(fail)?;
        let mut scores = vec![0f32; judged.len()];
        for fold in 0..settings.folds {
            let fold_train: Vec<(Vec<f32>, String)> = judged
                .iter()
                .zip(&fold_of)
                .filter(|(_, f)| **f != fold)
                .map(|(e, _)| e.clone())
                .chain(rest.iter().cloned())
                .collect();
            let model = train_classifier(&fold_train, &opts).map_err(fail)?;
            for (i, (x, _)) in judged.iter().enumerate() {
                if fold_of[i] == fold {
                    scores[i] = *model
                        .predict_proba(x)
                        .map_err(fail)?
                        .first()
                        .unwrap_or(&0.0);
                }
            }
        }
        let positive: Vec<bool> = labels.iter().map(|l| *l == "toxic").collect();
        let at_half = metrics_at("toxic", &scores, &positive, 0.5);
        let (t, m) = best_f1_threshold("toxic", &scores, &positive);
        println!(
            "toxicity probe ({}), {}-fold out-of-fold on {} rows: at 0.50 {}; best F1 at {t:.2}: {}",
            settings.model,
            settings.folds,
            judged.len(),
            metrics_line(&at_half),
            metrics_line(&m)
        );
        cv = Some((t, m));
    }
    let all: Vec<(Vec<f32>, String)> = train_ex.into_iter().chain(extra_ex).collect();
    let mut model = train_classifier(&all, &opts).map_err(fail)?;
    model.meta.embedding = Some(info);
    model.meta.training_files = std::iter::once(data.join("toxicity.train.jsonl"))
        .chain(extra.iter().cloned())
        .map(|p| p.display().to_string())
        .collect();
    if let Some((t, m)) = cv {
        for h in &mut model.heads {
            h.threshold = t;
        }
        model.meta.cross_validation = vec![m];
    }
    let dest = out.join(TOXICITY_PROBE_FILE);
    // Written next to the destination and renamed, so a running server never reads half a file.
    let staging = out.join(format!(".{TOXICITY_PROBE_FILE}.tmp"));
    model.save(&staging).map_err(fail)?;
    std::fs::rename(&staging, &dest).map_err(fail)?;
    println!(
        "toxicity probe: {} rows → {} (threshold {:.2}) in {:.0} s",
        all.len(),
        dest.display(),
        model.heads.first().map_or(0.5, |h| h.threshold),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The distilled table (`static.safetensors` in `out`, distilled once and reused), with
/// token weights refitted to IDF over every training file's texts.
fn static_encoder(
    embedder: &Embedder,
    model_dir: &std::path::Path,
    data: &std::path::Path,
    tasks: &[&str],
    out: &std::path::Path,
) -> Result<StaticEmbedder, ExitCode> {
    let table = out.join(STATIC_TABLE_FILE);
    let mut fast = if table.exists() {
        StaticEmbedder::load(&table, model_dir).map_err(fail)?
    } else {
        let started = Instant::now();
        let fast = StaticEmbedder::distill(embedder, |done, total| {
            eprint!("\rdistilling token vectors from the encoder: {done}/{total}");
        })
        .map_err(fail)?;
        eprintln!(" ({:.0} s)", started.elapsed().as_secs_f64());
        fast
    };
    let mut texts = Vec::new();
    for task in tasks {
        let path = data.join(format!("{task}.train.jsonl"));
        if path.exists() {
            texts.extend(read_jsonl(&path).map_err(fail)?.into_iter().map(|r| r.text));
        }
    }
    fast.fit_weights(texts.iter().map(String::as_str))
        .map_err(fail)?;
    fast.save(&table).map_err(fail)?;
    Ok(fast)
}

/// Obfuscated copies of a text, each named, as attackers send them.
pub fn obfuscations(text: &str) -> Vec<(&'static str, String)> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(text);
    let rot13: String = text
        .chars()
        .map(|c| match c {
            'a'..='m' | 'A'..='M' => ((c as u8) + 13) as char,
            'n'..='z' | 'N'..='Z' => ((c as u8) - 13) as char,
            _ => c,
        })
        .collect();
    let leet: String = text
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            'a' => '4',
            'e' => '3',
            'i' => '1',
            'o' => '0',
            's' => '5',
            't' => '7',
            _ => c,
        })
        .collect();
    let zero_width: String = text
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            if i % 3 == 2 && c.is_alphabetic() {
                vec![c, '\u{200b}']
            } else {
                vec![c]
            }
        })
        .collect();
    let homoglyph: String = text
        .chars()
        .map(|c| match c {
            'a' => 'а',
            'e' => 'е',
            'o' => 'о',
            'p' => 'р',
            'c' => 'с',
            'x' => 'х',
            _ => c,
        })
        .collect();
    let fullwidth: String = text
        .chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 - 0x21 + 0xFF01).unwrap_or(c),
            _ => c,
        })
        .collect();
    vec![
        ("base64", b64),
        ("hex", hex::encode(text)),
        ("rot13", rot13),
        ("reversed", text.chars().rev().collect()),
        ("leetspeak", leet),
        ("zero-width", zero_width),
        ("homoglyph", homoglyph),
        ("full-width", fullwidth),
    ]
}

#[derive(Default)]
struct Tally {
    tp: u32,
    fp: u32,
    tn: u32,
    fn_: u32,
}

impl Tally {
    fn add(&mut self, predicted: bool, actual: bool) {
        match (predicted, actual) {
            (true, true) => self.tp += 1,
            (true, false) => self.fp += 1,
            (false, false) => self.tn += 1,
            (false, true) => self.fn_ += 1,
        }
    }

    fn row(&self) -> String {
        let p = f64::from(self.tp) / f64::from((self.tp + self.fp).max(1));
        let r = f64::from(self.tp) / f64::from((self.tp + self.fn_).max(1));
        let f1 = if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        };
        let fpr = f64::from(self.fp) / f64::from((self.fp + self.tn).max(1));
        format!(
            "{} | {:.3} | {:.3} | **{:.3}** | {:.3}",
            self.tp + self.fp + self.tn + self.fn_,
            p,
            r,
            f1,
            fpr
        )
    }
}

fn eval(files: Vec<PathBuf>, obfuscate: bool, config: Option<PathBuf>) -> Result<(), ExitCode> {
    let config = load_config(config)?;
    let rules = Guard::new(&config, None).map_err(fail)?;
    let learned = EmbeddingScorer::load(&config).map(|l| Arc::new(l) as Arc<dyn LearnedScorer>);
    let combined = match &learned {
        Some(l) => Some(Guard::new(&config, Some(Arc::clone(l))).map_err(fail)?),
        None => {
            eprintln!(
                "no trained classifier in {} (run `floodgate guard train`): rules only",
                classifier_dir(&config).display()
            );
            None
        }
    };
    let inj_t = config.guard.injection_threshold;
    let tox_t = config.guard.toxicity_threshold;
    println!("| file | variant | guard | rows | precision | recall | F1 | FPR |\n|---|---|---|---:|---:|---:|---:|---:|");
    // Per-text screening time, kept apart for the input guard's task (injection) and the
    // toxicity task (which may run the fine-tuned model, milliseconds per text).
    let mut latencies = Vec::new();
    let mut tox_latencies = Vec::new();
    for file in &files {
        let rows: Vec<LabeledText> = read_jsonl(file).map_err(fail)?;
        let injection_task = rows.iter().any(|r| r.label == "injection");
        let name = file
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
        let mut variants: Vec<(&str, Vec<(String, bool)>)> = vec![(
            "as is",
            rows.iter()
                .map(|r| (r.text.clone(), r.label == "injection" || r.label == "toxic"))
                .collect(),
        )];
        if obfuscate {
            let mut all = Vec::new();
            for r in &rows {
                for (_, t) in obfuscations(&r.text) {
                    all.push((t, r.label == "injection" || r.label == "toxic"));
                }
            }
            variants.push(("obfuscated (8 kinds)", all));
        }
        for (variant, items) in variants {
            for (label, guard) in [
                ("rules", Some(&rules)),
                ("rules + classifier", combined.as_ref()),
            ] {
                let Some(guard) = guard else { continue };
                let mut tally = Tally::default();
                for (text, actual) in &items {
                    let started = Instant::now();
                    // Toxicity files also measure the learned toxicity head.
                    let (_, s) = guard.screen_with(text, !injection_task);
                    if label != "rules" {
                        if injection_task {
                            latencies.push(started.elapsed());
                        } else {
                            tox_latencies.push(started.elapsed());
                        }
                    }
                    let predicted = if injection_task {
                        s.injection >= inj_t
                    } else {
                        s.toxicity_max >= tox_t
                    };
                    tally.add(predicted, *actual);
                }
                println!("| {name} | {variant} | {label} | {} |", tally.row());
            }
        }
    }
    if latencies.is_empty() && tox_latencies.is_empty() {
        for file in &files {
            for r in read_jsonl(file).map_err(fail)? {
                let started = Instant::now();
                let _ = rules.screen(&r.text);
                latencies.push(started.elapsed());
            }
        }
    }
    let classifier = if combined.is_some() {
        " + classifier"
    } else {
        ""
    };
    for (what, mut l) in [
        (format!("normalise + rules{classifier}"), latencies),
        (
            "toxicity: normalise + rules + learned toxicity".to_string(),
            tox_latencies,
        ),
    ] {
        if l.is_empty() {
            continue;
        }
        l.sort();
        let pct = |p: f64| l[((l.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;
        println!(
            "\nscreen latency per text ({what}), {} texts: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            l.len(),
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
    }
    Ok(())
}

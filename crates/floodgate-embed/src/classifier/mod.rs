//! Small trainable classifiers over sentence embeddings: one logistic
//! regression per label ("head"), for the prompt-injection and toxicity
//! guards and, later, drift and cascade routing.
//!
//! Why this shape: a guard runs on every request, so scoring must cost next
//! to nothing once the embedding exists (one dot product per head), and the
//! model must be small enough to read, diff and ship as JSON. Logistic
//! regression on MiniLM embeddings is the usual strong baseline for short-text
//! classification with a few thousand examples, trains in seconds, and gives
//! scores that rank well, which is what a threshold needs.
//!
//! - Inputs are the embedding, optionally followed by numeric features the
//!   caller computes (rule hits, length, ...); their names are recorded so a
//!   model cannot silently be fed features in another order.
//! - Training standardises every input column, fits each head by Newton's
//!   method on the L2-regularised, class-weighted log loss (convex, so the
//!   optimum is unique and reached in a few iterations), then folds the
//!   standardisation back into the weights: the saved model is plain
//!   `w·x + b`.
//! - Each head's decision threshold is chosen on out-of-fold scores of the
//!   training set (never on the scores of examples a model was fitted on,
//!   which are optimistic), as the lowest threshold whose false-positive rate
//!   stays within a bound: a guard's cost is mostly benign users blocked.
//! - Labels listed as negative (`benign`, `ok`, ...) get no head; every other
//!   label gets a one-vs-rest head.

mod data;
mod metrics;
mod solver;

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::EmbedError;

pub use data::{embed_labeled, read_jsonl, train_from_jsonl, LabeledText};
pub use metrics::{auc, metrics_at, pick_threshold, Metrics};

/// Bumped when the JSON layout changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;

/// A trained multi-head classifier. Serialises to the JSON file a guard loads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Classifier {
    pub format_version: u32,
    /// Length of every input vector: embedding width + `feature_names.len()`.
    pub input_dim: usize,
    /// Names of the numeric features after the embedding, in order.
    pub feature_names: Vec<String>,
    pub heads: Vec<Head>,
    pub meta: Metadata,
}

/// One label's logistic regression over the raw (unstandardised) input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub label: String,
    pub weights: Vec<f32>,
    pub bias: f32,
    /// Probability at or above which the label is predicted.
    pub threshold: f32,
}

/// What a model was trained on and how, so that a figure quoted for it can be
/// traced back and the embedding settings reproduced at inference time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// RFC 3339, UTC.
    pub trained_at: String,
    /// The encoder and its settings; `None` when training on vectors the
    /// caller produced.
    pub embedding: Option<EmbeddingInfo>,
    pub examples: usize,
    pub label_counts: BTreeMap<String, usize>,
    /// Training rows per source (a JSONL `source` field, else the file name).
    pub sources: BTreeMap<String, usize>,
    pub training_files: Vec<String>,
    pub options: TrainOptions,
    /// Out-of-fold metrics of each head on the training set, at the chosen
    /// threshold; empty when the threshold was fixed.
    pub cross_validation: Vec<Metrics>,
}

/// The encoder settings a classifier expects its inputs to come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingInfo {
    pub model: String,
    pub dim: usize,
    pub max_tokens: usize,
    pub truncation: String,
}

/// How examples of each class weigh in the loss.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClassWeight {
    /// Every example counts once.
    Uniform,
    /// Positives and negatives contribute equally in total, whatever their
    /// counts (n / (2·n_class) per example).
    Balanced,
    /// Each positive counts `positive` times a negative.
    Positive { positive: f64 },
}

/// How each head's decision threshold is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ThresholdRule {
    Fixed {
        threshold: f32,
    },
    /// The lowest threshold whose false-positive rate on out-of-fold scores
    /// of the training set is at most `max_fpr`.
    MaxFpr {
        max_fpr: f64,
        folds: usize,
    },
}

/// Training settings; recorded in the model's metadata.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainOptions {
    /// Labels that mean "nothing to flag"; they get no head.
    pub negative_labels: Vec<String>,
    /// L2 penalty on the standardised weights (the bias is not penalised),
    /// relative to the mean per-example loss.
    pub l2: f64,
    pub class_weight: ClassWeight,
    pub threshold: ThresholdRule,
    pub max_iterations: usize,
    /// Names of the numeric features after the embedding, if any.
    pub feature_names: Vec<String>,
    /// Seeds the fold assignment of cross-validation.
    pub seed: u64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            negative_labels: ["benign", "ok", "safe", "clean", "none", "0", "false"]
                .map(String::from)
                .to_vec(),
            l2: 1e-2,
            class_weight: ClassWeight::Balanced,
            threshold: ThresholdRule::MaxFpr {
                max_fpr: 0.05,
                folds: 5,
            },
            max_iterations: 50,
            feature_names: Vec::new(),
            seed: 0x5eed,
        }
    }
}

/// Scores of one input: a probability per head, and whether it is at or
/// above that head's threshold.
#[derive(Debug, Clone, PartialEq)]
pub struct Score<'a> {
    pub label: &'a str,
    pub probability: f32,
    pub flagged: bool,
}

impl Classifier {
    /// The probability of each head's label, in head order.
    pub fn predict_proba(&self, input: &[f32]) -> Result<Vec<f32>, EmbedError> {
        self.check_dim(input.len())?;
        Ok(self.heads.iter().map(|h| h.probability(input)).collect())
    }

    /// Each head's probability and decision.
    pub fn score(&self, input: &[f32]) -> Result<Vec<Score<'_>>, EmbedError> {
        self.check_dim(input.len())?;
        Ok(self
            .heads
            .iter()
            .map(|h| {
                let probability = h.probability(input);
                Score {
                    label: &h.label,
                    probability,
                    flagged: probability >= h.threshold,
                }
            })
            .collect())
    }

    /// The head for `label`, if the model has one.
    pub fn head(&self, label: &str) -> Option<&Head> {
        self.heads.iter().find(|h| h.label == label)
    }

    fn check_dim(&self, got: usize) -> Result<(), EmbedError> {
        if got == self.input_dim {
            Ok(())
        } else {
            Err(EmbedError::Invalid(format!(
                "classifier expects {} inputs ({} embedding + features {:?}), got {got}",
                self.input_dim,
                self.input_dim - self.feature_names.len(),
                self.feature_names
            )))
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of strings, numbers and maps with string keys cannot fail
        // to serialise; NaN thresholds/metrics become `null`.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    pub fn save(&self, path: &Path) -> Result<(), EmbedError> {
        std::fs::write(path, self.to_json()).map_err(|e| EmbedError::io("writing", path, e))
    }

    pub fn load(path: &Path) -> Result<Classifier, EmbedError> {
        let text = std::fs::read(path).map_err(|e| EmbedError::io("reading", path, e))?;
        let model: Classifier =
            serde_json::from_slice(&text).map_err(|source| EmbedError::Json {
                path: path.to_path_buf(),
                source,
            })?;
        model.validate().map_err(|reason| EmbedError::Data {
            path: path.to_path_buf(),
            line: 0,
            reason,
        })?;
        Ok(model)
    }

    /// The invariants a deserialised model must hold before it is used.
    fn validate(&self) -> Result<(), String> {
        if self.format_version != FORMAT_VERSION {
            return Err(format!(
                "format_version {} is not supported (expected {FORMAT_VERSION})",
                self.format_version
            ));
        }
        if self.feature_names.len() > self.input_dim {
            return Err("more feature names than inputs".into());
        }
        for h in &self.heads {
            if h.weights.len() != self.input_dim {
                return Err(format!(
                    "head {:?} has {} weights for {} inputs",
                    h.label,
                    h.weights.len(),
                    self.input_dim
                ));
            }
        }
        Ok(())
    }
}

impl Head {
    pub fn probability(&self, input: &[f32]) -> f32 {
        let z: f32 = self
            .weights
            .iter()
            .zip(input)
            .map(|(w, x)| w * x)
            .sum::<f32>()
            + self.bias;
        sigmoid(z)
    }
}

fn sigmoid(z: f32) -> f32 {
    1.0 / (1.0 + (-z).exp())
}

/// Trains one head per non-negative label on `(input, label)` examples.
/// Every input must have the same length.
pub fn train(
    examples: &[(Vec<f32>, String)],
    opts: &TrainOptions,
) -> Result<Classifier, EmbedError> {
    let input_dim = check_examples(examples, opts)?;
    let labels = head_labels(examples, opts);
    if labels.is_empty() {
        return Err(EmbedError::Invalid(format!(
            "no positive label: every example is one of {:?}",
            opts.negative_labels
        )));
    }
    let inputs: Vec<&[f32]> = examples.iter().map(|(x, _)| x.as_slice()).collect();
    let mut heads = Vec::with_capacity(labels.len());
    let mut cross_validation = Vec::new();
    for label in &labels {
        let y: Vec<bool> = examples.iter().map(|(_, l)| l == label).collect();
        let threshold = match opts.threshold {
            ThresholdRule::Fixed { threshold } => threshold,
            ThresholdRule::MaxFpr { max_fpr, folds } => {
                let scores = out_of_fold_scores(&inputs, &y, opts, folds)?;
                let threshold = pick_threshold(&scores, &y, max_fpr);
                cross_validation.push(metrics_at(label, &scores, &y, threshold));
                threshold
            }
        };
        let (weights, bias) = solver::fit(&inputs, &y, opts)?;
        heads.push(Head {
            label: label.clone(),
            weights,
            bias,
            threshold,
        });
    }
    let mut label_counts = BTreeMap::new();
    for (_, l) in examples {
        *label_counts.entry(l.clone()).or_insert(0) += 1;
    }
    Ok(Classifier {
        format_version: FORMAT_VERSION,
        input_dim,
        feature_names: opts.feature_names.clone(),
        heads,
        meta: Metadata {
            trained_at: rfc3339_now(),
            embedding: None,
            examples: examples.len(),
            label_counts,
            sources: BTreeMap::new(),
            training_files: Vec::new(),
            options: opts.clone(),
            cross_validation,
        },
    })
}

/// Per-head metrics of `model` on labelled examples, at each head's threshold.
pub fn evaluate(
    model: &Classifier,
    examples: &[(Vec<f32>, String)],
) -> Result<Vec<Metrics>, EmbedError> {
    let mut scores = vec![Vec::with_capacity(examples.len()); model.heads.len()];
    for (x, _) in examples {
        for (per_head, p) in scores.iter_mut().zip(model.predict_proba(x)?) {
            per_head.push(p);
        }
    }
    Ok(model
        .heads
        .iter()
        .zip(&scores)
        .map(|(head, s)| {
            let y: Vec<bool> = examples.iter().map(|(_, l)| *l == head.label).collect();
            metrics_at(&head.label, s, &y, head.threshold)
        })
        .collect())
}

/// k-fold cross-validation of the whole training procedure (threshold choice
/// included): each fold is scored by a model trained, with `opts`, on the
/// other folds; the metrics are computed over all held-out predictions at
/// the thresholds those models chose. Folds are stratified per label.
pub fn cross_validate(
    examples: &[(Vec<f32>, String)],
    opts: &TrainOptions,
    folds: usize,
) -> Result<Vec<Metrics>, EmbedError> {
    check_examples(examples, opts)?;
    let labels = head_labels(examples, opts);
    let label_of: Vec<&str> = examples.iter().map(|(_, l)| l.as_str()).collect();
    let fold_of = assign_folds(&label_of, folds, opts.seed)?;
    let mut probabilities = vec![vec![0f32; examples.len()]; labels.len()];
    let mut flagged = vec![vec![false; examples.len()]; labels.len()];
    for fold in 0..folds {
        let train_set: Vec<(Vec<f32>, String)> = examples
            .iter()
            .zip(&fold_of)
            .filter(|(_, f)| **f != fold)
            .map(|(e, _)| e.clone())
            .collect();
        let model = train(&train_set, opts)?;
        for (i, (x, _)) in examples
            .iter()
            .enumerate()
            .filter(|(i, _)| fold_of[*i] == fold)
        {
            for (k, label) in labels.iter().enumerate() {
                // A label absent from the training folds has no head: score 0.
                let (p, t) = model
                    .head(label)
                    .map_or((0.0, 1.0), |h| (h.probability(x), h.threshold));
                probabilities[k][i] = p;
                flagged[k][i] = p >= t;
            }
        }
    }
    Ok(labels
        .iter()
        .enumerate()
        .map(|(k, label)| {
            let y: Vec<bool> = label_of.iter().map(|l| l == label).collect();
            metrics::from_decisions(label, &probabilities[k], &flagged[k], &y, f32::NAN)
        })
        .collect())
}

/// Scores of each example from a model that did not see it (k-fold, one
/// label, threshold not needed).
fn out_of_fold_scores(
    inputs: &[&[f32]],
    y: &[bool],
    opts: &TrainOptions,
    folds: usize,
) -> Result<Vec<f32>, EmbedError> {
    // Fewer folds than examples of the rarer class would leave a fold
    // without it; use as many as the data allows.
    let positives = y.iter().filter(|&&b| b).count();
    let folds = folds.min(positives).min(y.len() - positives);
    if folds < 2 {
        return Err(EmbedError::Invalid(format!(
            "threshold selection needs at least 2 examples of each class, got {positives} of {}",
            y.len()
        )));
    }
    let classes: Vec<&str> = y.iter().map(|&b| if b { "1" } else { "0" }).collect();
    let fold_of = assign_folds(&classes, folds, opts.seed)?;
    let mut scores = vec![0f32; inputs.len()];
    for fold in 0..folds {
        let (train_x, train_y): (Vec<&[f32]>, Vec<bool>) = inputs
            .iter()
            .zip(y)
            .zip(&fold_of)
            .filter(|(_, f)| **f != fold)
            .map(|((x, y), _)| (*x, *y))
            .unzip();
        let (w, b) = solver::fit(&train_x, &train_y, opts)?;
        let head = Head {
            label: String::new(),
            weights: w,
            bias: b,
            threshold: 0.5,
        };
        for (i, x) in inputs
            .iter()
            .enumerate()
            .filter(|(i, _)| fold_of[*i] == fold)
        {
            scores[i] = head.probability(x);
        }
    }
    Ok(scores)
}

/// Stratified fold numbers: within each class, examples are shuffled
/// (seeded) and dealt round-robin, so every fold gets its share of each class.
pub fn assign_folds(classes: &[&str], folds: usize, seed: u64) -> Result<Vec<usize>, EmbedError> {
    if folds < 2 || folds > classes.len() {
        return Err(EmbedError::Invalid(format!(
            "cannot split {} examples into {folds} folds",
            classes.len()
        )));
    }
    let mut by_class: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, c) in classes.iter().enumerate() {
        by_class.entry(c).or_default().push(i);
    }
    let mut fold_of = vec![0; classes.len()];
    let mut rng = seed ^ 0x9E37_79B9_7F4A_7C15;
    let mut next_fold = 0;
    for members in by_class.values_mut() {
        // Fisher-Yates with a xorshift generator: reproducible, no dependency.
        for i in (1..members.len()).rev() {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let j = (rng % (i as u64 + 1)) as usize;
            members.swap(i, j);
        }
        for &i in members.iter() {
            fold_of[i] = next_fold;
            next_fold = (next_fold + 1) % folds;
        }
    }
    Ok(fold_of)
}

fn check_examples(
    examples: &[(Vec<f32>, String)],
    opts: &TrainOptions,
) -> Result<usize, EmbedError> {
    let Some((first, _)) = examples.first() else {
        return Err(EmbedError::Invalid("no training examples".into()));
    };
    let dim = first.len();
    // An input may be named features only (no embedding), but never fewer columns
    // than names.
    if dim == 0 || dim < opts.feature_names.len() {
        return Err(EmbedError::Invalid(format!(
            "inputs of length {dim} cannot hold {} named features",
            opts.feature_names.len()
        )));
    }
    if let Some(i) = examples.iter().position(|(x, _)| x.len() != dim) {
        return Err(EmbedError::Invalid(format!(
            "example {i} has {} inputs, the first has {dim}",
            examples[i].0.len()
        )));
    }
    if let Some(i) = examples
        .iter()
        .position(|(x, _)| x.iter().any(|v| !v.is_finite()))
    {
        return Err(EmbedError::Invalid(format!(
            "example {i} has a non-finite input"
        )));
    }
    if !(opts.l2 >= 0.0 && opts.l2.is_finite()) {
        return Err(EmbedError::Invalid(format!(
            "l2 must be finite and >= 0, not {}",
            opts.l2
        )));
    }
    Ok(dim)
}

/// The labels that get a head, sorted.
fn head_labels(examples: &[(Vec<f32>, String)], opts: &TrainOptions) -> Vec<String> {
    let mut labels: Vec<String> = examples
        .iter()
        .map(|(_, l)| l.clone())
        .filter(|l| !opts.negative_labels.contains(l))
        .collect();
    labels.sort();
    labels.dedup();
    labels
}

/// `YYYY-MM-DDTHH:MM:SSZ` for now.
pub(crate) fn rfc3339_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

fn rfc3339(unix_secs: u64) -> String {
    let (mut days, rem) = (unix_secs / 86_400, unix_secs % 86_400);
    let leap = |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
    let mut year = 1970;
    loop {
        let len = if leap(year) { 366 } else { 365 };
        if days < len {
            break;
        }
        days -= len;
        year += 1;
    }
    let feb = if leap(year) { 29 } else { 28 };
    let mut month = 1;
    for len in [31, feb, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] {
        if days < len {
            break;
        }
        days -= len;
        month += 1;
    }
    format!(
        "{year:04}-{month:02}-{:02}T{:02}:{:02}:{:02}Z",
        days + 1,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests;

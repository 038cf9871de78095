//! Offline work on a route: answering a golden set with every tier, training the
//! router on those answers, and turning them into calibration outcomes. Used by
//! `floodgate cascade run|train|calibrate`; the request path never calls it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use floodgate_embed::classifier::{self, ClassWeight, ThresholdRule};
use floodgate_embed::ngrams::NgramFeatures;
use floodgate_embed::{Classifier, TextEncoder, TrainOptions};
use floodgate_gateway::backend::Backend;
use floodgate_gateway::cascade::router::{
    PreFeatures, Router, RouterFile, POST_LABEL, PRE_LABEL, ROUTER_FORMAT_VERSION,
};
use floodgate_gateway::cascade::signals::{AnswerSignals, CASCADE_TOP_LOGPROBS};
use floodgate_gateway::inference::{FinishReason, Message, Priority, SamplingParams};
use floodgate_gateway::records::Price;
use floodgate_gateway::validate::{GenParams, PromptInput};
use serde::{Deserialize, Serialize};

use super::calibrate::Outcome;
use super::golden::{is_correct, GoldenRow};

/// One tier's answer to one golden question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GoldenAnswer {
    pub id: String,
    pub tier: String,
    pub question: String,
    pub answer: String,
    pub correct: bool,
    pub signals: AnswerSignals,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub compute_seconds: f64,
    pub cost_usd: f64,
}

/// How the golden questions are asked.
#[derive(Debug, Clone)]
pub struct AskOptions {
    /// A system message before each question (empty: none).
    pub system: String,
    pub max_tokens: u32,
}

impl Default for AskOptions {
    fn default() -> Self {
        Self {
            system: "Answer the question in a few words.".into(),
            max_tokens: 32,
        }
    }
}

/// A golden row's id: its own, or its line number.
pub fn row_id(row: &GoldenRow, index: usize) -> String {
    row.id.clone().unwrap_or_else(|| format!("row-{index}"))
}

/// Asks `backend` one question greedily, with the alternatives the signals need.
pub async fn ask(
    backend: &dyn Backend,
    tier: &str,
    price: Price,
    id: String,
    row: &GoldenRow,
    opts: &AskOptions,
) -> Result<GoldenAnswer, String> {
    let mut messages = Vec::new();
    if !opts.system.is_empty() {
        messages.push(Message {
            role: "system".into(),
            content: opts.system.clone(),
        });
    }
    messages.push(Message {
        role: "user".into(),
        content: row.question.clone(),
    });
    let params = GenParams {
        max_tokens: Some(opts.max_tokens),
        sampling: SamplingParams {
            temperature: 0.0,
            ..SamplingParams::default()
        },
        stop: Vec::new(),
        logprobs: Some(CASCADE_TOP_LOGPROBS),
        ignore_eos: false,
        priority: Priority::Batch,
    };
    let generation = backend
        .generate(
            &PromptInput::Chat(messages),
            &params,
            opts.max_tokens,
            false,
        )
        .await
        .map_err(|e| e.to_string())?;
    let held = floodgate_gateway::backend::buffer(generation)
        .await
        .map_err(|e| e.to_string())?;
    let run = price.run(tier, &held.finish, true);
    Ok(GoldenAnswer {
        id,
        tier: tier.to_string(),
        question: row.question.clone(),
        correct: is_correct(&held.text, &row.answers),
        signals: AnswerSignals::from_logprobs(
            &held.logprobs,
            &held.text,
            held.finish.reason == FinishReason::Length,
        ),
        answer: held.text,
        prompt_tokens: run.prompt_tokens,
        completion_tokens: run.completion_tokens,
        compute_seconds: run.compute_seconds,
        cost_usd: run.cost_usd,
    })
}

/// Where a tier's answers to a golden file are kept: `runs/<tier>--<file stem>.jsonl`
/// in the cascade directory.
pub fn answers_path(cascade_dir: &Path, tier: &str, golden: &Path) -> PathBuf {
    let stem = golden
        .file_stem()
        .map_or_else(|| "golden".into(), |s| s.to_string_lossy().into_owned());
    cascade_dir
        .join("runs")
        .join(format!("{tier}--{stem}.jsonl"))
}

/// Answers already stored for a tier, by question id.
pub fn read_answers(path: &Path) -> BTreeMap<String, GoldenAnswer> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return BTreeMap::new();
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<GoldenAnswer>(l).ok())
        .map(|a| (a.id.clone(), a))
        .collect()
}

/// The small and large tier's answers to the same questions, in golden order.
pub fn paired<'a>(
    rows: &'a [GoldenRow],
    small: &'a BTreeMap<String, GoldenAnswer>,
    large: &'a BTreeMap<String, GoldenAnswer>,
) -> Vec<(&'a GoldenRow, &'a GoldenAnswer, &'a GoldenAnswer)> {
    rows.iter()
        .enumerate()
        .filter_map(|(i, r)| {
            let id = row_id(r, i);
            Some((r, small.get(&id)?, large.get(&id)?))
        })
        .collect()
}

/// Router training settings.
#[derive(Debug, Clone)]
pub struct RouterTraining {
    /// Word n-grams the pre-router reads beside the embedding and the shape features.
    pub ngrams: usize,
    pub l2_pre: f64,
    pub l2_post: f64,
    pub folds: usize,
}

impl Default for RouterTraining {
    fn default() -> Self {
        Self {
            ngrams: 256,
            l2_pre: 0.1,
            l2_post: 0.01,
            folds: 5,
        }
    }
}

/// Out-of-fold quality of a trained router, for the trainer's report.
#[derive(Debug, Clone, Serialize)]
pub struct RouterReport {
    pub examples: usize,
    pub small_right: usize,
    /// Questions the large tier gets right and the small one does not.
    pub escalation_helps: usize,
    pub pre_auc: f64,
    pub post_auc: f64,
}

fn options(l2: f64, feature_names: Vec<String>, negative: &str) -> TrainOptions {
    TrainOptions {
        negative_labels: vec![negative.to_string()],
        l2,
        class_weight: ClassWeight::Balanced,
        threshold: ThresholdRule::Fixed { threshold: 0.5 },
        max_iterations: 100,
        feature_names,
        seed: 0x5eed,
    }
}

/// A pre-router trained on `idx`: n-grams chosen on those questions only.
fn fit_pre(
    idx: &[usize],
    questions: &[&str],
    embeddings: &[Vec<f32>],
    gain: &[bool],
    settings: &RouterTraining,
) -> Result<(Classifier, NgramFeatures), String> {
    let qs: Vec<&str> = idx.iter().map(|&i| questions[i]).collect();
    let ys: Vec<bool> = idx.iter().map(|&i| gain[i]).collect();
    let ngrams = NgramFeatures::select(&qs, &ys, settings.ngrams, 3);
    let examples: Vec<(Vec<f32>, String)> = idx
        .iter()
        .map(|&i| {
            (
                pre_vector(&embeddings[i], questions[i], &ngrams),
                if gain[i] { PRE_LABEL } else { "small_right" }.to_string(),
            )
        })
        .collect();
    let names = PreFeatures::new(None, ngrams.clone()).feature_names();
    let model = classifier::train(&examples, &options(settings.l2_pre, names, "no_gain"))
        .map_err(|e| e.to_string())?;
    Ok((model, ngrams))
}

fn pre_vector(embedding: &[f32], question: &str, ngrams: &NgramFeatures) -> Vec<f32> {
    let mut v = embedding.to_vec();
    v.extend(floodgate_gateway::cascade::router::prompt_features(
        question,
    ));
    ngrams.append_to(question, &mut v);
    v
}

/// Trains the pre-router (prompt → P(small tier wrong)) and the post scorer
/// (small answer's signals → P(right)) on golden answers of both tiers, and measures
/// both out of fold (the whole procedure, n-gram choice included, per fold).
pub fn train_router(
    route: &str,
    tiers: &[String],
    pairs: &[(&GoldenRow, &GoldenAnswer, &GoldenAnswer)],
    encoder: Option<Box<dyn TextEncoder>>,
    settings: &RouterTraining,
) -> Result<(RouterFile, RouterReport), String> {
    if pairs.len() < 20 {
        return Err(format!(
            "{} answered questions; training a router needs at least 20",
            pairs.len()
        ));
    }
    let questions: Vec<&str> = pairs.iter().map(|(r, _, _)| r.question.as_str()).collect();
    let small_wrong: Vec<bool> = pairs.iter().map(|(_, s, _)| !s.correct).collect();
    let small_right: Vec<bool> = small_wrong.iter().map(|w| !w).collect();
    // The pre-router learns where escalating helps: small wrong, large right.
    let gain: Vec<bool> = pairs
        .iter()
        .map(|(_, s, l)| !s.correct && l.correct)
        .collect();
    if !gain.iter().any(|g| *g) {
        return Err("the large tier never answers right where the small one does not: nothing to escalate for".into());
    }
    let right = small_right.iter().filter(|r| **r).count();
    if right == 0 || right == pairs.len() {
        return Err(
            "the small tier is right on all or none of the questions: nothing to learn".into(),
        );
    }
    let embeddings: Vec<Vec<f32>> = match &encoder {
        Some(e) => {
            let mut out = Vec::with_capacity(questions.len());
            for chunk in questions.chunks(64) {
                out.extend(e.encode(chunk).map_err(|e| e.to_string())?);
            }
            out
        }
        None => vec![Vec::new(); questions.len()],
    };
    let folds = settings.folds.max(2);
    let classes: Vec<&str> = gain
        .iter()
        .map(|&g| if g { PRE_LABEL } else { "no_gain" })
        .collect();
    let fold_of = classifier::assign_folds(&classes, folds, 0x5eed).map_err(|e| e.to_string())?;
    let post_examples: Vec<(Vec<f32>, String)> = pairs
        .iter()
        .map(|(_, s, _)| {
            (
                s.signals.features(),
                if s.correct { POST_LABEL } else { "small_wrong" }.to_string(),
            )
        })
        .collect();
    let post_opts = options(
        settings.l2_post,
        floodgate_gateway::cascade::router::post_feature_names(),
        "small_wrong",
    );
    let mut pre_oof = vec![0f32; pairs.len()];
    let mut post_oof = vec![0f32; pairs.len()];
    for fold in 0..folds {
        let train_idx: Vec<usize> = (0..pairs.len()).filter(|&i| fold_of[i] != fold).collect();
        let (pre, ngrams) = fit_pre(&train_idx, &questions, &embeddings, &gain, settings)?;
        let post_train: Vec<(Vec<f32>, String)> = train_idx
            .iter()
            .map(|&i| post_examples[i].clone())
            .collect();
        let post = classifier::train(&post_train, &post_opts).map_err(|e| e.to_string())?;
        for i in (0..pairs.len()).filter(|&i| fold_of[i] == fold) {
            let v = pre_vector(&embeddings[i], questions[i], &ngrams);
            pre_oof[i] = pre.head(PRE_LABEL).map_or(0.0, |h| h.probability(&v));
            post_oof[i] = post
                .head(POST_LABEL)
                .map_or(0.0, |h| h.probability(&post_examples[i].0));
        }
    }
    let all: Vec<usize> = (0..pairs.len()).collect();
    let (mut pre, _) = fit_pre(&all, &questions, &embeddings, &gain, settings)?;
    pre.meta.embedding = encoder.as_ref().map(|e| e.info());
    let post = classifier::train(&post_examples, &post_opts).map_err(|e| e.to_string())?;
    let report = RouterReport {
        examples: pairs.len(),
        small_right: right,
        escalation_helps: gain.iter().filter(|g| **g).count(),
        pre_auc: classifier::auc(&pre_oof, &gain),
        post_auc: classifier::auc(&post_oof, &small_right),
    };
    Ok((
        RouterFile {
            format_version: ROUTER_FORMAT_VERSION,
            route: route.to_string(),
            tiers: tiers.to_vec(),
            pre: Some(pre),
            post: Some(post),
            calibration: None,
        },
        report,
    ))
}

/// Calibration outcomes: both tiers' results with the router's scores.
pub fn outcomes(
    router: Option<&Router>,
    pairs: &[(&GoldenRow, &GoldenAnswer, &GoldenAnswer)],
) -> Vec<Outcome> {
    pairs
        .iter()
        .map(|(row, small, large)| Outcome {
            small_right: small.correct,
            large_right: large.correct,
            small_cost: small.cost_usd,
            large_cost: large.cost_usd,
            pre: router.and_then(|r| r.pre_score(&row.question)),
            post: router.and_then(|r| r.post_score(&small.signals)),
        })
        .collect()
}

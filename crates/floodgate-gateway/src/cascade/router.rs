//! A route's trained router: the pre-generation scorer, the post-answer scorer and the
//! calibrated thresholds, in one JSON file written by `floodgate cascade train` and
//! `floodgate cascade calibrate --write`.
//!
//! - `pre` reads the prompt (a sentence embedding of it, a few shape features and chosen
//!   word n-grams) and gives the probability that escalating helps: that the large tier
//!   answers it right where the small one does not. At or above `pre_threshold` the
//!   request goes straight to the large tier.
//! - `post` reads the small tier's answer signals ([`AnswerSignals`]) and gives the
//!   probability that the answer is right. Below `post_threshold` the large tier answers
//!   instead.

use std::path::Path;

use floodgate_embed::classifier::EmbeddingInfo;
use floodgate_embed::ngrams::NgramFeatures;
use floodgate_embed::{Classifier, TextEncoder, STATIC_ENCODER_SUFFIX};
use serde::{Deserialize, Serialize};

use super::signals::AnswerSignals;

/// Bumped when the file layout changes incompatibly.
pub const ROUTER_FORMAT_VERSION: u32 = 1;

/// The label of the pre-router's head: escalating helps — the large tier answers the
/// prompt right where the small one does not. (Training on "small tier wrong" instead
/// would also escalate the many prompts neither tier gets right, at no gain.)
pub const PRE_LABEL: &str = "escalation_helps";
/// The label of the post scorer's head: the small tier's answer is right.
pub const POST_LABEL: &str = "small_right";

/// Prefix of the prompt-shape features in a pre-router's feature names.
pub const PROMPT_FEATURE_PREFIX: &str = "prompt:";

/// Names of [`prompt_features`], in order, without the prefix.
pub const PROMPT_FEATURES: &[&str] = &[
    "log_chars",
    "log_words",
    "digit_share",
    "capitalised_share",
    "question_mark",
    "quote",
];

/// Shape features of a prompt that an embedding averages away.
pub fn prompt_features(text: &str) -> Vec<f32> {
    let chars = text.chars().count();
    let words: Vec<&str> = text.split_whitespace().collect();
    let digits = text.chars().filter(char::is_ascii_digit).count();
    // Capitalised words after the first: names, places, titles.
    let capitalised = words
        .iter()
        .skip(1)
        .filter(|w| w.chars().next().is_some_and(char::is_uppercase))
        .count();
    let n_words = words.len().max(1) as f32;
    vec![
        (1.0 + chars as f32).ln(),
        (1.0 + words.len() as f32).ln(),
        digits as f32 / chars.max(1) as f32,
        capitalised as f32 / n_words,
        f32::from(u8::from(text.contains('?'))),
        f32::from(u8::from(text.contains('"') || text.contains('\''))),
    ]
}

/// What calibration chose, and what it measured when it chose it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// `pre`, `post` or `pre+post`.
    pub policy: String,
    pub pre_threshold: Option<f32>,
    pub post_threshold: Option<f32>,
    /// Quality kept, as a share of the largest tier's quality.
    pub target: f64,
    pub golden: String,
    pub questions: usize,
    /// Measured on the golden set at these thresholds.
    pub quality: f64,
    pub cost_usd_per_request: f64,
    pub escalation_rate: f64,
    /// Each tier alone, in tier order.
    pub tier_quality: Vec<f64>,
    pub tier_cost_usd_per_request: Vec<f64>,
    pub calibrated_at: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterFile {
    pub format_version: u32,
    pub route: String,
    pub tiers: Vec<String>,
    pub pre: Option<Classifier>,
    pub post: Option<Classifier>,
    pub calibration: Option<Calibration>,
}

impl RouterFile {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let file: RouterFile =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        if file.format_version != ROUTER_FORMAT_VERSION {
            return Err(format!(
                "{}: format version {} (this build reads {ROUTER_FORMAT_VERSION})",
                path.display(),
                file.format_version
            ));
        }
        Ok(file)
    }

    /// Writes atomically (temporary file, then rename).
    pub fn save(&self, path: &Path) -> Result<(), String> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
    }
}

/// Builds a pre-router's input for a prompt: embedding, then the named features.
pub struct PreFeatures {
    encoder: Option<Box<dyn TextEncoder>>,
    ngrams: NgramFeatures,
}

impl PreFeatures {
    pub fn new(encoder: Option<Box<dyn TextEncoder>>, ngrams: NgramFeatures) -> Self {
        Self { encoder, ngrams }
    }

    /// The feature names a classifier trained on [`Self::vector`] records.
    pub fn feature_names(&self) -> Vec<String> {
        PROMPT_FEATURES
            .iter()
            .map(|n| format!("{PROMPT_FEATURE_PREFIX}{n}"))
            .chain(self.ngrams.feature_names())
            .collect()
    }

    pub fn encoder(&self) -> Option<&dyn TextEncoder> {
        self.encoder.as_deref()
    }

    pub fn vector(&self, text: &str) -> Result<Vec<f32>, String> {
        let mut v = match &self.encoder {
            Some(e) => e
                .encode(&[text])
                .map_err(|e| e.to_string())?
                .pop()
                .unwrap_or_default(),
            None => Vec::new(),
        };
        v.extend(prompt_features(text));
        self.ngrams.append_to(text, &mut v);
        Ok(v)
    }

    /// Rebuilds the features a trained pre-router reads. `cascade_dir` holds the static
    /// token table if the router was trained on one; `minilm_dir` is the encoder.
    pub fn for_classifier(
        model: &Classifier,
        cascade_dir: &Path,
        minilm_dir: &Path,
    ) -> Result<Self, String> {
        let n_prompt = PROMPT_FEATURES.len();
        let names = &model.feature_names;
        let prompt_ok = names.len() >= n_prompt
            && names
                .iter()
                .take(n_prompt)
                .zip(PROMPT_FEATURES)
                .all(|(n, want)| n.strip_prefix(PROMPT_FEATURE_PREFIX) == Some(*want));
        let ngrams = NgramFeatures::from_feature_names(&names[n_prompt.min(names.len())..]);
        let (true, Some(ngrams)) = (prompt_ok, ngrams) else {
            return Err(format!(
                "the pre-router reads features this build cannot compute: {:?}",
                names.iter().take(n_prompt + 2).collect::<Vec<_>>()
            ));
        };
        let encoder = match &model.meta.embedding {
            None => None,
            Some(info) => Some(load_encoder(info, cascade_dir, minilm_dir)?),
        };
        let features = Self { encoder, ngrams };
        let width =
            features.encoder.as_ref().map_or(0, |e| e.info().dim) + features.feature_names().len();
        if width != model.input_dim {
            return Err(format!(
                "the pre-router expects {} inputs, its features make {width}",
                model.input_dim
            ));
        }
        Ok(features)
    }
}

/// The static token table's file name in the cascade directory.
pub const STATIC_TABLE_FILE: &str = "static.safetensors";

/// The encoder a pre-router was trained on: the static token table in the cascade
/// directory, or MiniLM itself.
#[cfg(feature = "engine")]
fn load_encoder(
    info: &EmbeddingInfo,
    cascade_dir: &Path,
    minilm_dir: &Path,
) -> Result<Box<dyn TextEncoder>, String> {
    use floodgate_embed::{EmbedOptions, Embedder, StaticEmbedder, Truncation};
    if info.model.ends_with(STATIC_ENCODER_SUFFIX) {
        let table = StaticEmbedder::load(&cascade_dir.join(STATIC_TABLE_FILE), minilm_dir)
            .map_err(|e| e.to_string())?;
        return Ok(Box::new(table));
    }
    let truncation = if info.truncation == "head" {
        Truncation::Head
    } else {
        Truncation::HeadAndTail
    };
    let opts = EmbedOptions {
        truncation,
        ..EmbedOptions::default().with_max_tokens(info.max_tokens)
    };
    Ok(Box::new(
        Embedder::load(minilm_dir, opts).map_err(|e| e.to_string())?,
    ))
}

/// Without the engine there is no sentence encoder: a router that reads embeddings
/// cannot be loaded (one on prompt features and n-grams alone can).
#[cfg(not(feature = "engine"))]
fn load_encoder(
    info: &EmbeddingInfo,
    _cascade_dir: &Path,
    _minilm_dir: &Path,
) -> Result<Box<dyn TextEncoder>, String> {
    Err(format!(
        "the pre-router reads `{}` embeddings; this build has no `engine` feature to compute them",
        info.model
    ))
}

/// A router loaded for serving.
pub struct Router {
    pub file: RouterFile,
    pre: Option<(Classifier, PreFeatures)>,
}

impl Router {
    pub fn load(path: &Path, minilm_dir: &Path) -> Result<Self, String> {
        let file = RouterFile::load(path)?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::from_file(file, &path.display().to_string(), dir, minilm_dir)
    }

    /// A router from its parsed file; `origin` names it in errors, `dir` holds a static
    /// token table if the pre-router reads one.
    pub fn from_file(
        file: RouterFile,
        origin: &str,
        dir: &Path,
        minilm_dir: &Path,
    ) -> Result<Self, String> {
        let pre = match &file.pre {
            Some(model) => {
                if model.head(PRE_LABEL).is_none() {
                    return Err(format!(
                        "{origin}: the pre-router has no `{PRE_LABEL}` head"
                    ));
                }
                Some((
                    model.clone(),
                    PreFeatures::for_classifier(model, dir, minilm_dir)?,
                ))
            }
            None => None,
        };
        if let Some(post) = &file.post {
            if post.head(POST_LABEL).is_none() {
                return Err(format!(
                    "{origin}: the post scorer has no `{POST_LABEL}` head"
                ));
            }
            if post.input_dim != super::signals::FEATURE_NAMES.len() {
                return Err(format!(
                    "{origin}: the post scorer reads {} features, this build computes {}",
                    post.input_dim,
                    super::signals::FEATURE_NAMES.len()
                ));
            }
        }
        Ok(Self { file, pre })
    }

    /// P(escalating this prompt helps); `None` without a pre-router.
    pub fn pre_score(&self, prompt: &str) -> Option<f32> {
        let (model, features) = self.pre.as_ref()?;
        let v = features.vector(prompt).ok()?;
        Some(model.head(PRE_LABEL)?.probability(&v))
    }

    /// Whether the pre-router needs a full encoder pass (milliseconds): run it off the
    /// async workers then.
    pub fn pre_is_slow(&self) -> bool {
        self.pre.as_ref().is_some_and(|(_, f)| {
            f.encoder()
                .is_some_and(|e| !e.info().model.ends_with(STATIC_ENCODER_SUFFIX))
        })
    }

    /// P(the small tier's answer is right); `None` without a post scorer.
    pub fn post_score(&self, signals: &AnswerSignals) -> Option<f32> {
        let model = self.file.post.as_ref()?;
        Some(model.head(POST_LABEL)?.probability(&signals.features()))
    }
}

/// The names a post scorer records as its features.
pub fn post_feature_names() -> Vec<String> {
    super::signals::FEATURE_NAMES
        .iter()
        .map(|s| s.to_string())
        .collect()
}

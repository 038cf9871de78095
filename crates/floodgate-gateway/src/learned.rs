//! The guard's learned layer: all-MiniLM-L6-v2 sentence embeddings (in-process, candle)
//! and logistic-regression heads trained by `floodgate guard train`.
//!
//! A head's probability is rescaled so that its own trained threshold (chosen for a
//! false-positive budget on the training data) lands on 0.5; the guard then combines it
//! with the rule score by taking the larger, and `guard.injection_threshold` keeps one
//! meaning for both layers.
//!
//! Two encoders can feed the heads; the heads record which one they were trained on and
//! the scorer loads that one:
//! - the static table distilled from MiniLM (`floodgate guard train`, the default):
//!   IDF-weighted token vectors, ~10–100 µs per text, reads the whole prompt;
//! - the full MiniLM encoder (`--encoder minilm`): 8–70 ms per text on 2 CPU cores and
//!   only the first and last 64 tokens, so the guard would then have to run on a
//!   blocking thread and blow the latency budget.
//!
//! The guard asks the classifier only when the rules alone have not already decided.

use std::path::{Path, PathBuf};

use floodgate_embed::{
    Classifier, EmbedOptions, Embedder, StaticEmbedder, TextEncoder, Truncation,
    STATIC_ENCODER_SUFFIX,
};

use crate::guard::LearnedScorer;

/// The distilled token table's file name in the classifier directory.
pub const STATIC_TABLE_FILE: &str = "static.safetensors";

pub struct EmbeddingScorer {
    embedder: Box<dyn TextEncoder>,
    injection: Option<(Classifier, f32)>,
    toxicity: Option<(Classifier, f32)>,
}

/// Where the trained heads live: `guard.classifier_dir`, else `guard/` in the model home.
pub fn classifier_dir(config: &crate::Config) -> PathBuf {
    if !config.guard.classifier_dir.is_empty() {
        return PathBuf::from(&config.guard.classifier_dir);
    }
    crate::server::model_store(config).root().join("guard")
}

/// The embedding model's directory in the model cache.
pub fn embedder_dir(config: &crate::Config) -> PathBuf {
    crate::server::model_store(config)
        .root()
        .join("models")
        .join("all-minilm-l6-v2")
}

fn head(path: &Path, label: &str) -> Option<(Classifier, f32)> {
    let c = Classifier::load(path).ok()?;
    let threshold = c.head(label)?.threshold;
    Some((c, threshold))
}

impl EmbeddingScorer {
    /// Loads whatever is installed; `None` when the embedding model or every head is missing.
    pub fn load(config: &crate::Config) -> Option<Self> {
        let dir = classifier_dir(config);
        let injection = head(&dir.join("injection.json"), "injection");
        let toxicity = head(&dir.join("toxicity.json"), "toxic");
        if injection.is_none() && toxicity.is_none() {
            return None;
        }
        let trained_on: Vec<String> = [&injection, &toxicity]
            .into_iter()
            .flatten()
            .filter_map(|(c, _)| c.meta.embedding.as_ref().map(|e| e.model.clone()))
            .collect();
        let is_static = trained_on.iter().any(|m| m.ends_with(STATIC_ENCODER_SUFFIX));
        if is_static && trained_on.iter().any(|m| !m.ends_with(STATIC_ENCODER_SUFFIX)) {
            tracing::warn!(?trained_on, "guard heads were trained on different encoders; retrain them together (`floodgate guard train`); rules only");
            return None;
        }
        let embedder: Box<dyn TextEncoder> = if is_static {
            let table = dir.join(STATIC_TABLE_FILE);
            Box::new(
                StaticEmbedder::load(&table, &embedder_dir(config))
                    .map_err(|e| tracing::warn!(error = %e, "guard classifiers found but their token table is not loadable; rules only"))
                    .ok()?,
            )
        } else {
            Box::new(
                Embedder::load(
                    &embedder_dir(config),
                    EmbedOptions {
                        truncation: Truncation::HeadAndTail,
                        ..EmbedOptions::default().with_max_tokens(128)
                    },
                )
                .map_err(|e| tracing::warn!(error = %e, "guard classifiers found but the embedding model is not loadable; rules only"))
                .ok()?,
            )
        };
        Some(Self {
            embedder,
            injection,
            toxicity,
        })
    }

    fn probability(&self, text: &str, head: &Option<(Classifier, f32)>) -> Option<f32> {
        let (classifier, threshold) = head.as_ref()?;
        let v = self.embedder.encode(&[text]).ok()?.pop()?;
        let p = *classifier.predict_proba(&v).ok()?.first()?;
        Some(rescale(p, *threshold))
    }
}

/// Maps `p` so that `threshold` becomes 0.5, keeping 0 and 1 fixed.
pub fn rescale(p: f32, threshold: f32) -> f32 {
    let t = threshold.clamp(1e-3, 1.0 - 1e-3);
    if p < t {
        0.5 * p / t
    } else {
        0.5 + 0.5 * (p - t) / (1.0 - t)
    }
}

impl LearnedScorer for EmbeddingScorer {
    fn injection(&self, text: &str) -> Option<f32> {
        self.probability(text, &self.injection)
    }

    fn toxicity(&self, text: &str) -> Option<f32> {
        self.probability(text, &self.toxicity)
    }

    fn slow(&self) -> bool {
        !self
            .embedder
            .info()
            .model
            .ends_with(STATIC_ENCODER_SUFFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::rescale;

    #[test]
    fn the_trained_threshold_lands_on_one_half() {
        assert_eq!(rescale(0.8, 0.8), 0.5);
        assert_eq!(rescale(0.0, 0.8), 0.0);
        assert!((rescale(1.0, 0.8) - 1.0).abs() < 1e-6);
        assert!(rescale(0.79, 0.8) < 0.5 && rescale(0.81, 0.8) > 0.5);
    }
}

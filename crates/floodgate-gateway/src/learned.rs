//! The guard's learned layer: all-MiniLM-L6-v2 sentence embeddings (in-process, candle)
//! and logistic-regression heads trained by `floodgate guard train`.
//!
//! A head's probability is rescaled so that its own trained threshold (chosen for a
//! false-positive budget on the training data) lands on 0.5; the guard then combines it
//! with the rule score by taking the larger, and `guard.injection_threshold` keeps one
//! meaning for both layers.
//!
//! Cost: on 2 CPU cores one embedding takes ~6–8 ms whatever the length (it reads all
//! the weights), more for long texts, so the guard asks the classifier only when the
//! rules alone have not already decided, and screens on a blocking thread.

use std::path::{Path, PathBuf};

use floodgate_embed::{Classifier, EmbedOptions, Embedder, Truncation};

use crate::guard::LearnedScorer;

pub struct EmbeddingScorer {
    embedder: Embedder,
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
        let embedder = Embedder::load(
            &embedder_dir(config),
            EmbedOptions {
                truncation: Truncation::HeadAndTail,
                ..EmbedOptions::default().with_max_tokens(128)
            },
        )
        .map_err(|e| tracing::warn!(error = %e, "guard classifiers found but the embedding model is not loadable; rules only"))
        .ok()?;
        Some(Self {
            embedder,
            injection,
            toxicity,
        })
    }

    fn probability(&self, text: &str, head: &Option<(Classifier, f32)>) -> Option<f32> {
        let (classifier, threshold) = head.as_ref()?;
        let v = self.embedder.embed_one(text).ok()?;
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

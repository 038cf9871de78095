//! What testing one window against a profile found.

use serde::{Deserialize, Serialize};

/// One feature's test on one window.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FeatureResult {
    /// Feature name: "prompt_chars", "language", "embedding", ….
    pub name: String,
    /// "psi" (numeric), "chi2" (categorical) or "mmd" (embeddings).
    pub test: String,
    pub statistic: f64,
    /// Calibrated threshold: the feature drifts when `statistic` exceeds it (and, for binned
    /// features, the effect reaches the profile's `min_effect`).
    pub threshold: f64,
    /// Share of the calibration's no-drift windows whose statistic was at least this one's,
    /// as (1 + count) / (1 + windows): a permutation-style p-value.
    pub p_value: Option<f64>,
    pub drifted: bool,
    /// For a person: reference versus window (means and Wasserstein-1, or the categories
    /// that moved most, or the embedding counts).
    pub detail: String,
}

/// The result of [`Profile::test`](crate::Profile::test).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowReport {
    /// Requests in the window.
    pub n: usize,
    /// Any feature drifted.
    pub drifted: bool,
    pub features: Vec<FeatureResult>,
}

impl WindowReport {
    /// Names of the drifted features: what a "retrain suggested" record lists.
    pub fn moved(&self) -> Vec<&str> {
        self.features
            .iter()
            .filter(|f| f.drifted)
            .map(|f| f.name.as_str())
            .collect()
    }
}

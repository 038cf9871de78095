//! `[drift]`: data drift against a reference profile per route or model.

use serde::{Deserialize, Serialize};

/// `[drift]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DriftConfig {
    /// Compute prompt features on the request path and test live windows.
    pub enabled: bool,
    /// Requests per live window (tumbling, per route or model); also the window size a
    /// profile is calibrated for (`floodgate drift profile`).
    pub window: usize,
    /// No-drift windows drawn from the reference to calibrate the thresholds.
    pub bootstrap_windows: usize,
    /// Target false-alarm rate per window (all features together).
    pub false_alarm_rate: f64,
    /// At most this many requests per second have their prompt features computed (a
    /// token bucket per process); the rest carry none and are not in the windows.
    pub max_samples_per_second: f64,
    /// `static` (the MiniLM token table, microseconds per prompt; distilled once into
    /// the model home when missing) or `none` (no embedding test).
    pub embedder: DriftEmbedder,
    /// POSTed a JSON report when a window drifts; empty: no webhook.
    pub webhook_url: String,
    pub webhook_timeout_ms: u64,
    /// How often the analytics side re-reads the stored profiles.
    pub profile_refresh_seconds: u64,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum DriftEmbedder {
    #[default]
    Static,
    None,
}

impl Default for DriftConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            window: 200,
            bootstrap_windows: 500,
            false_alarm_rate: 0.01,
            max_samples_per_second: 200.0,
            embedder: DriftEmbedder::Static,
            webhook_url: String::new(),
            webhook_timeout_ms: 5_000,
            profile_refresh_seconds: 30,
        }
    }
}

impl DriftConfig {
    pub(super) fn validate(&self, errors: &mut Vec<String>) {
        if self.window < 10 {
            errors.push("drift.window: must be at least 10".into());
        }
        if self.bootstrap_windows < 100 {
            errors.push("drift.bootstrap_windows: must be at least 100".into());
        }
        if !(self.false_alarm_rate > 0.0 && self.false_alarm_rate < 0.5) {
            errors.push("drift.false_alarm_rate: must be between 0 and 0.5".into());
        }
        if !(self.max_samples_per_second.is_finite() && self.max_samples_per_second >= 0.0) {
            errors.push("drift.max_samples_per_second: must be a non-negative number".into());
        }
        let http = |u: &str| u.starts_with("http://") || u.starts_with("https://");
        if !self.webhook_url.is_empty() && !http(&self.webhook_url) {
            errors.push("drift.webhook_url: must be an http:// or https:// URL".into());
        }
    }
}

//! `[feedback]`: ratings and corrections, and what makes them suspicious.

use serde::{Deserialize, Serialize};

/// `[feedback]`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackConfig {
    /// Items one key may send per minute; more → 429.
    pub per_key_per_minute: f64,
    /// More than this many items from one key within a minute are quarantined.
    pub burst_per_minute: u64,
    /// This many distinct keys sending the same correction make a campaign.
    pub campaign_keys: usize,
    pub campaign_window_seconds: i64,
    /// Longest correction or comment accepted (bytes).
    pub max_text_bytes: usize,
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        Self {
            per_key_per_minute: 60.0,
            burst_per_minute: 20,
            campaign_keys: 3,
            campaign_window_seconds: 3600,
            max_text_bytes: 8192,
        }
    }
}

//! `POST /v1/feedback`: ratings and corrections that cannot be used to poison anything.
//!
//! Only the key that made a request may rate it: its decision record (which reaches the
//! store through the event log) names the key, and an item names the request by its
//! event id. Each key is rate-limited, each item is weighted by its key's reputation,
//! and anomaly checks send suspicious items to a quarantine queue that a reviewer reads
//! (`GET /admin/feedback?status=quarantined`):
//! - a flip: the same key rating the same request again with the opposite sign;
//! - a burst: more than `burst_per_minute` items from one key within a minute;
//! - a campaign: the same correction (normalised) pushed by `campaign_keys` or more keys
//!   within `campaign_window_seconds` — every item of the campaign is quarantined.
//!
//! **Architecture invariant:** feedback is data for evaluation only. Nothing in the
//! request path reads it: it never changes routing, thresholds or models by itself, and
//! every accepted item names the key that sent it.

mod postgres;
mod sqlite;

use serde::{Deserialize, Serialize};

use crate::error::GatewayError;

pub use postgres::PgFeedbackStore;
pub use sqlite::SqliteFeedbackStore;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackRequest {
    pub request_id: String,
    /// -1 (bad), 0 (neutral) or 1 (good).
    pub rating: i8,
    /// What the answer should have been.
    #[serde(default)]
    pub correction: Option<String>,
    #[serde(default)]
    pub comment: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FeedbackItem {
    pub id: String,
    pub request_id: String,
    pub key_id: String,
    pub rating: i8,
    pub correction: Option<String>,
    pub comment: Option<String>,
    /// The key's reputation when the item arrived, in [0, 1].
    pub weight: f64,
    /// `accepted` or `quarantined`.
    pub status: String,
    /// Why it was quarantined.
    pub reason: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

#[async_trait::async_trait]
pub trait FeedbackStore: Send + Sync {
    /// Stores an item with its correction's fingerprint (see [`fingerprint`]).
    async fn insert(
        &self,
        item: &FeedbackItem,
        fingerprint: Option<&str>,
    ) -> Result<(), sqlx::Error>;
    /// The key's earlier ratings of this request.
    async fn ratings_of(&self, key_id: &str, request_id: &str) -> Result<Vec<i8>, sqlx::Error>;
    /// Items from this key since `since`.
    async fn count_since(&self, key_id: &str, since: i64) -> Result<u64, sqlx::Error>;
    /// Items carrying this correction fingerprint since `since`: (item id, key id).
    async fn with_fingerprint(
        &self,
        fingerprint: &str,
        since: i64,
    ) -> Result<Vec<(String, String)>, sqlx::Error>;
    async fn quarantine(&self, ids: &[String], reason: &str) -> Result<(), sqlx::Error>;
    /// (accepted, quarantined) items so far from this key.
    async fn history(&self, key_id: &str) -> Result<(u64, u64), sqlx::Error>;
    async fn list(&self, status: Option<&str>) -> Result<Vec<FeedbackItem>, sqlx::Error>;
}

pub use crate::config::FeedbackConfig;

/// Corrections that differ only in case, spacing or punctuation are the same push.
pub fn fingerprint(correction: &str) -> String {
    use sha2::Digest;
    let n = floodgate_guard::normalize::normalize(correction);
    let canon: String = n
        .skeleton
        .chars()
        .filter(|c| c.is_alphanumeric() || c.is_whitespace())
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    hex::encode(sha2::Sha256::digest(canon.as_bytes()))
}

/// Reputation in [0, 1]: new keys start at 0.5 and earn weight with accepted items;
/// quarantined items cost it.
pub fn reputation(accepted: u64, quarantined: u64) -> f64 {
    let a = accepted as f64;
    let q = quarantined as f64;
    ((1.0 + a) / (2.0 + a + 4.0 * q)).clamp(0.0, 1.0)
}

pub fn db_error(e: sqlx::Error) -> GatewayError {
    GatewayError::Internal(format!("feedback store: {e}"))
}

//! `POST /v1/feedback`: ratings and corrections that cannot be used to poison anything.
//!
//! Only the key that made a request may rate it (ownership is recorded when the request
//! is admitted). Each key is rate-limited, each item is weighted by its key's reputation,
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

mod sqlite;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};

use crate::auth::{Caller, Scope};
use crate::edge::{RequestId, ValidJson};
use crate::error::GatewayError;
use crate::limits::{Charge, Quota, Verdict};
use crate::AppState;

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

/// Who made a request, recorded at admission so that only its owner may rate it.
#[derive(Debug, Clone)]
pub struct RequestOwner {
    pub request_id: String,
    pub key_id: String,
    pub model: String,
}

#[async_trait::async_trait]
pub trait FeedbackStore: Send + Sync {
    async fn record_request(&self, owner: &RequestOwner, at: i64) -> Result<(), sqlx::Error>;
    async fn request_owner(&self, request_id: &str) -> Result<Option<String>, sqlx::Error>;
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

/// Settings; part of `[feedback]` in the configuration.
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

fn db_error(e: sqlx::Error) -> GatewayError {
    GatewayError::Internal(format!("feedback store: {e}"))
}

/// `POST /v1/feedback`: a rating (and optional correction) of one of the caller's own
/// requests. Items that look like poisoning (a flip, a burst, a campaign of keys pushing
/// the same correction) are stored quarantined, never dropped silently.
pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ValidJson(req): ValidJson<FeedbackRequest>,
) -> Result<Response, GatewayError> {
    caller.require(Scope::Feedback)?;
    check_request(&req, state.config.feedback.max_text_bytes)?;
    let store = &state.feedback;
    let key_id = caller.key_id().to_string();
    // Only the request's owner may rate it; a request of someone else's looks unknown.
    let owner = store
        .request_owner(&req.request_id)
        .await
        .map_err(db_error)?;
    if owner.as_deref() != Some(key_id.as_str()) {
        return Err(GatewayError::NotFound {
            what: "request",
            id: req.request_id,
        });
    }
    limit_rate(&state, &key_id).await?;
    let now = crate::clock::unix_secs();
    let reason = suspicion(&state, &key_id, &req, now).await?;
    let (accepted, quarantined) = store.history(&key_id).await.map_err(db_error)?;
    let fp = req
        .correction
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .map(fingerprint);
    let mut item = FeedbackItem {
        id: format!("fb_{}", uuid::Uuid::new_v4().simple()),
        request_id: req.request_id,
        key_id: key_id.clone(),
        rating: req.rating,
        correction: req.correction,
        comment: req.comment,
        weight: reputation(accepted, quarantined),
        status: if reason.is_some() {
            "quarantined"
        } else {
            "accepted"
        }
        .into(),
        reason,
        created_at: now,
    };
    store.insert(&item, fp.as_deref()).await.map_err(db_error)?;
    if let Some(fp) = fp {
        detect_campaign(&state, &fp, now, &mut item).await?;
    }
    metrics::counter!("floodgate_feedback_items_total", "status" => item.status.clone())
        .increment(1);
    if let Some(r) = &item.reason {
        tracing::warn!(feedback = %item.id, key = %key_id, reason = %r, "feedback quarantined");
    }
    Ok((StatusCode::CREATED, Json(item)).into_response())
}

fn check_request(req: &FeedbackRequest, max_text_bytes: usize) -> Result<(), GatewayError> {
    if !(-1..=1).contains(&req.rating) {
        return Err(GatewayError::invalid(
            "Invalid 'rating': use -1 (bad), 0 (neutral) or 1 (good).",
            Some("rating".to_string()),
        ));
    }
    for (name, text) in [("correction", &req.correction), ("comment", &req.comment)] {
        if text.as_ref().is_some_and(|t| t.len() > max_text_bytes) {
            return Err(GatewayError::invalid(
                format!("Invalid '{name}': at most {max_text_bytes} bytes."),
                Some(name.to_string()),
            ));
        }
    }
    Ok(())
}

/// The per-key feedback rate (`feedback.per_key_per_minute`), on the admission limiter.
async fn limit_rate(state: &AppState, key_id: &str) -> Result<(), GatewayError> {
    let per_minute = state.config.feedback.per_key_per_minute;
    let Some(quota) = Quota::per_minute(per_minute, 60.0) else {
        return Ok(());
    };
    let charge = Charge {
        bucket: format!("feedback:{key_id}"),
        quota,
        amount: 1.0,
    };
    if let Ok(Verdict::Limited { retry_after, .. }) =
        state.admission.limiter().acquire(&[charge]).await
    {
        return Err(GatewayError::RateLimited {
            message: format!("Feedback rate limit reached ({per_minute} per minute)."),
            retry_after: retry_after.is_finite().then_some(retry_after),
        });
    }
    Ok(())
}

/// Why this item is quarantined on arrival, if it is: the key rated the same request the
/// other way before (a flip), or sent more than `feedback.burst_per_minute` items.
async fn suspicion(
    state: &AppState,
    key_id: &str,
    req: &FeedbackRequest,
    now: i64,
) -> Result<Option<String>, GatewayError> {
    let store = &state.feedback;
    let earlier = store
        .ratings_of(key_id, &req.request_id)
        .await
        .map_err(db_error)?;
    if earlier
        .iter()
        .any(|&r| r != 0 && req.rating != 0 && r.signum() != req.rating.signum())
    {
        return Ok(Some(
            "flip: this key rated the same request the other way before".to_string(),
        ));
    }
    let burst = state.config.feedback.burst_per_minute;
    if store
        .count_since(key_id, now - 60)
        .await
        .map_err(db_error)?
        >= burst
    {
        return Ok(Some(format!(
            "burst: more than {burst} items from this key within a minute"
        )));
    }
    Ok(None)
}

/// Quarantines every item carrying correction fingerprint `fp` once
/// `feedback.campaign_keys` keys have pushed it within the campaign window.
async fn detect_campaign(
    state: &AppState,
    fp: &str,
    now: i64,
    item: &mut FeedbackItem,
) -> Result<(), GatewayError> {
    let cfg = &state.config.feedback;
    let store = &state.feedback;
    let same = store
        .with_fingerprint(fp, now - cfg.campaign_window_seconds)
        .await
        .map_err(db_error)?;
    let keys: std::collections::HashSet<&str> = same.iter().map(|(_, k)| k.as_str()).collect();
    if keys.len() >= cfg.campaign_keys {
        let why = format!("campaign: {} keys pushed the same correction", keys.len());
        let ids: Vec<String> = same.iter().map(|(i, _)| i.clone()).collect();
        store.quarantine(&ids, &why).await.map_err(db_error)?;
        item.status = "quarantined".into();
        item.reason = Some(why);
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    pub status: Option<String>,
}

/// `GET /admin/feedback[?status=quarantined]`, for reviewers and admins.
pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Query<ListQuery>,
) -> Result<Response, GatewayError> {
    if caller.require(Scope::Reviewer).is_err() {
        caller.require(Scope::Admin)?;
    }
    let items = state
        .feedback
        .list(q.status.as_deref())
        .await
        .map_err(db_error)?;
    Ok(Json(serde_json::json!({ "object": "list", "data": items })).into_response())
}

/// Records who made a request (called once it is admitted).
pub fn record_owner(state: &AppState, caller: &Caller, request: Option<&RequestId>, model: &str) {
    let Some(request) = request else { return };
    let owner = RequestOwner {
        request_id: request.0.clone(),
        key_id: caller.key_id().to_string(),
        model: model.to_string(),
    };
    let store = state.feedback.clone();
    tokio::spawn(async move {
        if let Err(e) = store
            .record_request(&owner, crate::clock::unix_secs())
            .await
        {
            metrics::counter!("floodgate_store_errors_total", "store" => "requests").increment(1);
            tracing::warn!(error = %e, "could not record the request's owner");
        }
    });
}

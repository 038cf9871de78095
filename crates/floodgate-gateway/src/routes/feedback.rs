//! `POST /v1/feedback` and `GET /admin/feedback`: ratings and corrections of a caller's
//! own requests, screened for poisoning, and the reviewers' list of them.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde::Deserialize;

use crate::auth::{Caller, Scope};
use crate::edge::ValidJson;
use crate::error::GatewayError;
use crate::feedback::{db_error, fingerprint, reputation, FeedbackItem, FeedbackRequest};
use crate::limits::{Charge, Quota, Verdict};
use crate::AppState;

/// `POST /v1/feedback`: a rating (and optional correction) of one of the caller's own
/// requests. Items that look like poisoning (a flip, a burst, a campaign of keys pushing
/// the same correction) are stored quarantined, never dropped silently.
pub async fn submit(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ValidJson(req): ValidJson<FeedbackRequest>,
) -> Result<Response, GatewayError> {
    caller.require(Scope::Feedback)?;
    check_request(&req, state.config().feedback.max_text_bytes)?;
    let store = &state.feedback;
    let key_id = caller.key_id().to_string();
    // Only the request's owner may rate it: its decision record, by event id or by the
    // client's id among this key's records. Someone else's request looks unknown.
    let Some(record) = state
        .records
        .get_for_key(&req.request_id, &key_id)
        .await
        .map_err(db_error)?
    else {
        return Err(GatewayError::NotFound {
            what: "request",
            id: req.request_id,
        });
    };
    // Feedback names the request by its event id: a client id may be reused.
    let req = FeedbackRequest {
        request_id: record.event_id,
        ..req
    };
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
    let per_minute = state.config().feedback.per_key_per_minute;
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
    let burst = state.config().feedback.burst_per_minute;
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
    let config = state.config();
    let cfg = &config.feedback;
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

//! `GET /v1/requests/{id}/decision`: a request's decision record.

use axum::extract::{Path, State};
use axum::{Extension, Json};

use crate::auth::{Caller, Scope};
use crate::error::GatewayError;
use crate::records::DecisionRecord;
use crate::AppState;

/// `GET /v1/requests/{id}/decision`: the request's owner, or an admin or auditor.
pub async fn get_decision(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Json<DecisionRecord>, GatewayError> {
    let privileged = caller.require(Scope::Admin).is_ok() || caller.require(Scope::Auditor).is_ok();
    let record = if privileged {
        state.records.get(&id).await
    } else {
        state.records.get_for_key(&id, caller.key_id()).await
    }
    .map_err(|e| GatewayError::Internal(format!("decision store: {e}")))?;
    match record {
        // Someone else's request is reported as unknown, not forbidden: ids do not leak.
        Some(r) if privileged || r.key_id == caller.key_id() => Ok(Json(r)),
        _ => Err(GatewayError::NotFound {
            what: "decision record for request",
            id,
        }),
    }
}

//! The admin API: key management for holders of the `admin` role.
//!
//! `POST /admin/keys` creates a key and returns its secret once; `GET /admin/keys`
//! lists records (never secrets); `DELETE /admin/keys/{id}` revokes at once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};

use crate::auth::{self, Caller, NewKey, Scope};
use crate::edge::ValidJson;
use crate::error::GatewayError;
use crate::AppState;

fn store_error(e: auth::StoreError) -> GatewayError {
    GatewayError::Internal(e.to_string())
}

pub async fn create_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ValidJson(mut new): ValidJson<NewKey>,
) -> Result<Response, GatewayError> {
    caller.require(Scope::Admin)?;
    if new.scopes.is_empty() {
        new.scopes = state
            .config
            .auth
            .default_scopes
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
    }
    let created = auth::create_key(state.auth.store.as_ref(), new)
        .await
        .map_err(store_error)?;
    tracing::info!(key = %created.record.id, by = caller.key_id(), "key created");
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

pub async fn list_keys(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> Result<Response, GatewayError> {
    caller.require(Scope::Admin)?;
    let keys = state.auth.store.list().await.map_err(store_error)?;
    Ok(Json(serde_json::json!({ "object": "list", "data": keys })).into_response())
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Result<Response, GatewayError> {
    caller.require(Scope::Admin)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if state
        .auth
        .store
        .revoke(&id, now)
        .await
        .map_err(store_error)?
    {
        tracing::info!(key = %id, by = caller.key_id(), "key revoked");
        Ok(Json(serde_json::json!({ "id": id, "revoked": true })).into_response())
    } else {
        Err(GatewayError::NotFound { what: "key", id })
    }
}

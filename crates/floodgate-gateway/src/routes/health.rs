//! Liveness, readiness and metrics.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::registry::ModelState;
use crate::AppState;

/// The process is up and serving HTTP.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Every model configured at start (each enabled variant) is loaded and servable.
/// Variants a configuration reload added are listed but not waited for: loading one
/// must not take a serving instance out of rotation.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let mut ready = true;
    let models: serde_json::Map<String, serde_json::Value> = state
        .registry
        .snapshot()
        .into_iter()
        .map(|(name, s, enabled, required)| {
            let v = match s {
                _ if !enabled => json!({"state": "disabled"}),
                ModelState::Ready(_) => json!({"state": "ready"}),
                ModelState::Loading(step) => {
                    ready &= !required;
                    json!({"state": "loading", "step": step})
                }
                ModelState::Failed(why) => {
                    ready &= !required;
                    json!({"state": "failed", "error": why})
                }
            };
            (name, v)
        })
        .collect();
    let routes: serde_json::Map<String, serde_json::Value> = state
        .routes
        .snapshot()
        .into_iter()
        .map(|(name, r)| {
            ready &= r;
            (name, json!({"state": if r { "ready" } else { "loading" }}))
        })
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({"status": if ready { "ready" } else { "not_ready" }, "models": models, "routes": routes});
    (status, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    for (name, s, _, _) in state.registry.snapshot() {
        let loaded = matches!(s, ModelState::Ready(_));
        metrics::gauge!("floodgate_model_loaded", "model" => name).set(if loaded {
            1.0
        } else {
            0.0
        });
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

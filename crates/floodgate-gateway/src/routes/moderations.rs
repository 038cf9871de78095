//! `POST /v1/moderations`: the guards' detectors, OpenAI-shaped. Categories are OpenAI's
//! (`harassment`, `hate`, `self-harm/intent`, …) plus `prompt_injection`; `flagged` is
//! true when any category reaches its threshold.

use axum::extract::State;
use axum::{Extension, Json};
use floodgate_protocol as p;

use crate::auth::{Caller, Scope};
use crate::edge::ValidJson;
use crate::error::GatewayError;
use crate::AppState;

/// Most inputs in one request.
const MAX_INPUTS: usize = 256;

pub async fn moderate(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ValidJson(req): ValidJson<p::ModerationRequest>,
) -> Result<Json<p::ModerationResponse>, GatewayError> {
    caller.require(Scope::Moderations)?;
    let inputs: Vec<String> = match req.input {
        p::ModerationInput::One(s) => vec![s],
        p::ModerationInput::Many(v) => v,
        p::ModerationInput::Parts(parts) => parts
            .into_iter()
            .filter_map(|part| match part {
                p::ModerationPart::Text { text } => Some(text),
                p::ModerationPart::ImageUrl { .. } => None,
            })
            .collect(),
    };
    if inputs.is_empty() {
        return Err(GatewayError::invalid(
            "Invalid 'input': give at least one text.",
            Some("input".to_string()),
        ));
    }
    if inputs.len() > MAX_INPUTS {
        return Err(GatewayError::invalid(
            format!("Invalid 'input': at most {MAX_INPUTS} texts per request."),
            Some("input".to_string()),
        ));
    }
    let guard = state.guard.clone();
    // Screening is CPU work (milliseconds for long inputs): off the async workers.
    let results = tokio::task::spawn_blocking(move || {
        inputs.iter().map(|t| guard.moderate(t)).collect::<Vec<_>>()
    })
    .await
    .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let flagged = results.iter().filter(|r| r.flagged).count();
    metrics::counter!("floodgate_moderation_inputs_total", "flagged" => "true")
        .increment(flagged as u64);
    metrics::counter!("floodgate_moderation_inputs_total", "flagged" => "false")
        .increment((results.len() - flagged) as u64);
    Ok(Json(p::ModerationResponse {
        id: format!("modr-{}", uuid::Uuid::new_v4().simple()),
        model: req.model.unwrap_or_else(|| "floodgate-guard".to_string()),
        results,
    }))
}

//! Stage 4, screen input: the input guard (injection scoring, PII redaction, policy),
//! then the abuse-cluster check on the text it normalised, then the request's owner is
//! recorded for feedback.

use std::sync::Arc;

use crate::error::GatewayError;
use crate::guard::InputDecision;
use crate::inference::TokenId;
use crate::validate::PromptInput;
use crate::AppState;

use super::RequestContext;

/// Prompts estimated above this many tokens are screened on a blocking thread.
const GUARD_INLINE_TOKENS: f64 = 1024.0;

pub async fn screen_input(state: &AppState, ctx: &mut RequestContext) -> Result<(), GatewayError> {
    let (input, normalized) = guard(state, ctx).await?;
    let fraction = state.admission.cost_fraction(
        &ctx.caller,
        ctx.estimate.prompt_tokens + ctx.estimate.max_tokens,
    );
    let cluster = state
        .guard
        .check_cluster(ctx.caller.key_id(), ctx.ip, &normalized, fraction)?;
    if let Some(cluster) = cluster {
        state.admission.throttle(&cluster).await?;
    }
    ctx.input_score = Some(input.score);
    if input.flagged {
        ctx.guard_notes.push("input-flagged");
    }
    if input.redacted > 0 {
        ctx.guard_notes.push("input-redacted");
    }
    Ok(())
}

/// The input guard over the prompt, which it may redact in place.
async fn guard(
    state: &AppState,
    ctx: &mut RequestContext,
) -> Result<(InputDecision, String), GatewayError> {
    let model = Some(&*ctx.tiers[0].variant.config);
    if ctx.estimate.prompt_tokens <= GUARD_INLINE_TOKENS && !state.guard.has_slow_classifier() {
        return state.guard.check_input(&mut ctx.request.prompt, model);
    }
    // Long prompts, and any prompt a full-encoder classifier reads, take milliseconds
    // to screen: off the async workers.
    let guard = Arc::clone(&state.guard);
    let model = model.cloned();
    let mut prompt = std::mem::replace(
        &mut ctx.request.prompt,
        PromptInput::Tokens(Vec::<TokenId>::new()),
    );
    let (result, prompt) = tokio::task::spawn_blocking(move || {
        let r = guard.check_input(&mut prompt, model.as_ref());
        (r, prompt)
    })
    .await
    .map_err(|e| GatewayError::Internal(e.to_string()))?;
    ctx.request.prompt = prompt;
    result
}

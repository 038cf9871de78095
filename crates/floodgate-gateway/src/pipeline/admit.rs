//! Stage 3, admit: the key's budget, then rate limits on requests, tokens and cost
//! (`crate::admission`). The most the request can use is reserved here; the
//! [`Settlement`] it leaves in the context settles the difference later, by ownership.

use std::sync::Arc;

use crate::admission::Ask;
use crate::error::GatewayError;
use crate::AppState;

use super::settle::Settlement;
use super::{resolve, Budget, Estimate, RequestContext};

pub async fn admit(state: &AppState, ctx: &mut RequestContext) -> Result<(), GatewayError> {
    ctx.budget = budget(state, ctx).await?;
    ctx.estimate = estimate(ctx);
    // The worst case: every tier runs (a cascade escalates after the small answer).
    let reserve_cost: f64 = ctx
        .tiers
        .iter()
        .map(|t| {
            t.price
                .tokens(ctx.estimate.prompt_tokens, ctx.estimate.max_tokens)
        })
        .sum();
    let ask = Ask {
        tokens: ctx.estimate.prompt_tokens + ctx.estimate.max_tokens,
        cost_usd: reserve_cost,
    };
    let mut permit = state.admission.admit(&ctx.caller, ctx.ip, ask).await?;
    ctx.rate_headers = std::mem::take(&mut permit.headers);
    ctx.settlement = Some(Settlement::new(
        permit,
        Arc::clone(&state.records),
        ctx.started,
    ));
    Ok(())
}

/// A key's budget: refused when it is spent, else what is left of it.
async fn budget(state: &AppState, ctx: &RequestContext) -> Result<Option<Budget>, GatewayError> {
    let Some(limit_usd) = ctx.caller.record().and_then(|r| r.budget_usd) else {
        return Ok(None);
    };
    let period = ctx.config.costs.budget_period;
    let spent_usd = state
        .records
        .spent(ctx.caller.key_id(), period, crate::clock::unix_secs())
        .await
        .map_err(|e| GatewayError::Internal(format!("usage store: {e}")))?;
    if spent_usd >= limit_usd {
        return Err(GatewayError::BudgetExceeded {
            spent: spent_usd,
            budget: limit_usd,
            period: period.to_string(),
        });
    }
    Ok(Some(Budget {
        limit_usd,
        spent_usd,
    }))
}

/// A cheap upper-side guess of the prompt's tokens (about 4 bytes a token; settled to
/// the real count later) and the completion's, both capped by the smallest context.
/// Asking for more than the context is the engine's 400, not a rate limit.
fn estimate(ctx: &RequestContext) -> Estimate {
    let context = resolve::context_tokens(ctx);
    let prompt_tokens = f64::from(ctx.request.prompt.estimated_tokens()).min(context);
    let max_tokens = f64::from(
        ctx.request
            .params
            .max_tokens
            .unwrap_or(ctx.config.limits.default_max_tokens),
    )
    .min(context - prompt_tokens);
    Estimate {
        prompt_tokens,
        max_tokens,
    }
}

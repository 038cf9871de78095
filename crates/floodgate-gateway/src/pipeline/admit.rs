//! Stage 3, admit: the key's budget, then rate limits on requests, tokens and cost
//! (`crate::admission`). The most the request can use is reserved here; the
//! [`Settlement`] it leaves in the context settles the difference later, by ownership.

use std::sync::Arc;

use crate::admission::Ask;
use crate::budget::{Budgets, Hold, Reserved};
use crate::config::OnBackendError;
use crate::error::GatewayError;
use crate::AppState;

use super::settle::Settlement;
use super::{resolve, Budget, Estimate, RequestContext};

pub async fn admit(state: &AppState, ctx: &mut RequestContext) -> Result<(), GatewayError> {
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
    let hold = budget(state, ctx, reserve_cost).await?;
    let mut permit = match state.admission.admit(&ctx.caller, ctx.ip, ask).await {
        Ok(p) => p,
        Err(e) => {
            if let Some(h) = hold {
                let _ = state.budgets.adjust(&h.key, -h.reserved).await;
            }
            return Err(e);
        }
    };
    ctx.rate_headers = std::mem::take(&mut permit.headers);
    let mut settlement = Settlement::new(permit, Arc::clone(&state.events), ctx.started);
    if let Some(h) = hold {
        settlement.hold_budget(Arc::clone(&state.budgets), h);
    }
    ctx.settlement = Some(settlement);
    Ok(())
}

/// A key's budget: refused when it is spent, else `reserve_usd` is held against it
/// (`crate::budget`) and settlement corrects it to the real cost.
async fn budget(
    state: &AppState,
    ctx: &mut RequestContext,
    reserve_usd: f64,
) -> Result<Option<Hold>, GatewayError> {
    let Some(limit_usd) = ctx.caller.record().and_then(|r| r.budget_usd) else {
        return Ok(None);
    };
    let period = ctx.config.costs.budget_period;
    let now = crate::clock::unix_secs();
    let key_id = ctx.caller.key_id().to_string();
    let (key, ttl) = Budgets::period_key(&key_id, period, now);
    // What was spent before this process met the key (read once per key and period).
    let seed = async {
        state
            .records
            .spent(&key_id, period, now)
            .await
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "budget: spend not readable from the store; counting from 0");
                0.0
            })
    };
    let reserved = match state
        .budgets
        .reserve(&key, ttl, limit_usd, reserve_usd, seed)
        .await
    {
        Ok(r) => r,
        // The spend store (Redis) is down: `ratelimit.on_backend_error` decides, as it
        // does for the rate limits.
        Err(e) if ctx.config.ratelimit.on_backend_error == OnBackendError::Open => {
            metrics::counter!("floodgate_budget_backend_errors_total", "action" => "allowed")
                .increment(1);
            tracing::warn!(error = %e, key = %key_id, "budget: spend store unavailable; admitted without a reservation (on_backend_error = open)");
            return Ok(None);
        }
        Err(e) => {
            metrics::counter!("floodgate_budget_backend_errors_total", "action" => "refused")
                .increment(1);
            return Err(GatewayError::LimiterUnavailable(e.to_string()));
        }
    };
    match reserved {
        Reserved::Exceeded { spent } => Err(GatewayError::BudgetExceeded {
            spent,
            budget: limit_usd,
            period: period.to_string(),
        }),
        Reserved::Ok { spent_before } => {
            ctx.budget = Some(Budget {
                limit_usd,
                spent_usd: spent_before,
            });
            Ok(Some(Hold {
                key,
                reserved: reserve_usd,
            }))
        }
    }
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

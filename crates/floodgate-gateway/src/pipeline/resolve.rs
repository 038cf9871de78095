//! Stage 5, first half, resolve: the name asked for becomes a list of tiers (a route's,
//! or the one model), each resolved to one loaded variant, sticky per user or key.

use std::sync::Arc;

use crate::error::GatewayError;
use crate::records::Price;
use crate::AppState;

use super::{RequestContext, Tier};

pub fn resolve(state: &AppState, ctx: &mut RequestContext) -> Result<(), GatewayError> {
    let route = state.routes.get(&ctx.request.model)?;
    let names: Vec<String> = match &route {
        Some(r) => r.config.tiers.clone(),
        None => vec![ctx.request.model.clone()],
    };
    let mut tiers = Vec::with_capacity(names.len());
    for name in &names {
        let variant = state
            .registry
            .resolve(name, &ctx.sticky)
            .map_err(|e| match (&route, e) {
                (Some(_), GatewayError::ModelNotFound(m)) => {
                    GatewayError::Internal(format!("route tier `{m}` is not a model"))
                }
                (_, e) => e,
            })?;
        let price = Price::of_model(&ctx.config, &variant.config);
        tiers.push(Tier { variant, price });
    }
    // Tell the first tier's engine this request is on its way: the guards take
    // milliseconds, and an idle engine then waits for a burst to gather instead of
    // starting on its first arrival alone (`model.burst_wait_ms`).
    ctx.announced = tiers
        .first()
        .and_then(|t| t.variant.backend.expect_request());
    ctx.route = route;
    ctx.tiers = tiers;
    Ok(())
}

/// The smallest context among the tiers: no request can use more, whatever it asks.
pub fn context_tokens(ctx: &RequestContext) -> f64 {
    ctx.tiers
        .iter()
        .map(|t| f64::from(t.variant.backend.info().context_length.max(1)))
        .fold(f64::INFINITY, f64::min)
}

/// The tier's backend, shared.
pub fn backend(ctx: &RequestContext, tier: usize) -> Arc<dyn crate::backend::Backend> {
    Arc::clone(&ctx.tiers[tier].variant.backend)
}

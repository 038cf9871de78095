//! Stage 5, second half, plan: for a route, which tier answers first (tenant and
//! segment pins, prompt-size rules, the pre-router) and whether the post check judges
//! its answer; the route part of the decision record starts here.

use std::sync::Arc;

use crate::auth::Caller;
use crate::cascade::{Facts, Plan, Route};
use crate::error::GatewayError;
use crate::records::RouteDecision;
use crate::validate::PromptInput;

use super::RequestContext;

pub async fn plan(ctx: &mut RequestContext) -> Result<(), GatewayError> {
    let Some(route) = ctx.route.clone() else {
        return Ok(());
    };
    let plan = plan_route(&route, ctx).await?;
    if plan.tier > 0 && route.config.is_cascade() && !plan.post_check {
        metrics::counter!("floodgate_cascade_escalations_total", "route" => route.config.name.clone(), "stage" => "pre").increment(1);
    }
    ctx.decision = Some(RouteDecision {
        route: route.config.name.clone(),
        policy: route.config.policy.to_string(),
        tiers: route.config.tiers.clone(),
        start_tier: plan.tier,
        final_tier: plan.tier,
        escalated: plan.tier > 0 && route.config.is_cascade(),
        reasons: vec![plan.reason.clone()],
        pre_score: plan.pre_score,
        pre_threshold: route.thresholds.pre,
        post_score: None,
        post_threshold: route.thresholds.post,
        signals: None,
    });
    ctx.tier = plan.tier;
    ctx.plan = plan;
    Ok(())
}

/// The text a pre-router reads: the last user message, or the prompt.
fn router_text(prompt: &PromptInput) -> String {
    match prompt {
        PromptInput::Chat(messages) => messages
            .iter()
            .rev()
            .find(|m| m.role == "user")
            .map(|m| m.content.clone())
            .unwrap_or_default(),
        PromptInput::Text(t) => t.clone(),
        PromptInput::Tokens(_) => String::new(),
    }
}

/// The route's rules, off the async workers when the pre-router runs a full encoder.
async fn plan_route(route: &Arc<Route>, ctx: &RequestContext) -> Result<Plan, GatewayError> {
    let tenant = ctx.caller.tenant().to_string();
    let key_id = ctx.caller.key_id().to_string();
    let user = ctx.request.user.clone();
    let segment = segment(&ctx.caller);
    let text = router_text(&ctx.request.prompt);
    let prompt_tokens = ctx.estimate.prompt_tokens;
    let stream = ctx.request.stream;
    let slow = route.router.as_ref().is_some_and(|r| r.pre_is_slow());
    let route = Arc::clone(route);
    let decide = move || {
        let facts = Facts {
            tenant: &tenant,
            segment: segment.as_deref().filter(|s| !s.is_empty()),
            prompt_tokens,
            stream,
            key_id: &key_id,
            user: user.as_deref(),
        };
        route.plan(&facts, || {
            route.router.as_ref().and_then(|r| r.pre_score(&text))
        })
    };
    if slow {
        tokio::task::spawn_blocking(decide)
            .await
            .map_err(|e| GatewayError::Internal(format!("router task failed: {e}")))
    } else {
        Ok(decide())
    }
}

fn segment(caller: &Caller) -> Option<String> {
    caller.record().map(|r| r.segment.clone())
}

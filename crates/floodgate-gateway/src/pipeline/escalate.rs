//! Stages 6 and 7, infer and escalate: the planned tier answers. Under a cascade's
//! post check its whole answer is generated with the alternatives the signals need and
//! held; the post scorer judges it, and below the threshold the last tier answers
//! instead. A kept answer is replayed with the log-probabilities the client asked for.

use std::sync::Arc;

use crate::backend::{buffer, Buffered, Generation};
use crate::cascade::signals::{AnswerSignals, CASCADE_TOP_LOGPROBS};
use crate::cascade::Route;
use crate::error::GatewayError;
use crate::inference::FinishReason;

use super::{infer, RequestContext};

/// The generation whose answer the client gets.
pub async fn answer(ctx: &mut RequestContext) -> Result<Generation, GatewayError> {
    let route = match &ctx.route {
        Some(r) if ctx.plan.post_check && ctx.decision.is_some() => Arc::clone(r),
        _ => return infer::start(ctx, ctx.tier, &ctx.request.params).await,
    };
    let mut params = ctx.request.params.clone();
    params.logprobs = Some(params.logprobs.unwrap_or(0).max(CASCADE_TOP_LOGPROBS));
    let held = buffer(infer::start(ctx, ctx.tier, &params).await?).await?;
    if judge(ctx, &route, &held) {
        let small = &ctx.tiers[ctx.tier];
        let run = small.price.run(&small.variant.id, &held.finish, false);
        // The discarded answer is paid for even if the large tier then fails.
        ctx.settlement()?.discard(run);
        ctx.tier = route.last_tier();
        if let Some(d) = ctx.decision.as_mut() {
            d.final_tier = ctx.tier;
        }
        metrics::counter!("floodgate_cascade_escalations_total", "route" => route.config.name.clone(), "stage" => "post").increment(1);
        infer::start(ctx, ctx.tier, &ctx.request.params).await
    } else {
        Ok(held.replay(ctx.request.params.logprobs))
    }
}

/// The post check over a held answer: true when the last tier should answer instead.
/// Its score, signals and reason go into the decision record.
fn judge(ctx: &mut RequestContext, route: &Route, held: &Buffered) -> bool {
    let prompt_len = held.prompt_text.as_ref().map_or(0, String::len);
    let answer = held.text.get(prompt_len..).unwrap_or(&held.text);
    let signals = AnswerSignals::from_logprobs(
        &held.logprobs,
        answer,
        held.finish.reason == FinishReason::Length,
    );
    let score = route.router.as_ref().and_then(|x| x.post_score(&signals));
    let threshold = route.thresholds.post.unwrap_or_default();
    let escalate = route.escalate_after(score);
    if let Some(d) = ctx.decision.as_mut() {
        d.post_score = score;
        d.signals = Some(signals);
        let (cmp, verdict) = if escalate {
            ("<", "escalated")
        } else {
            ("≥", "kept")
        };
        d.reasons.push(format!(
            "post: P(small answer right) = {:.3} {cmp} {threshold:.3}: {verdict}",
            score.unwrap_or_default()
        ));
        d.escalated |= escalate;
    }
    escalate
}

//! The request path for generation (`/v1/chat/completions`, `/v1/completions`) as
//! ordered stages over one [`RequestContext`].
//!
//! identify → validate → resolve → admit → screen input → plan → infer → escalate →
//! screen output → settle and record. Each stage is a plain function in its own module
//! that reads and fills the context (validation is `crate::validate`, which the HTTP
//! layer calls before the context exists); each may refuse the request with a
//! [`GatewayError`]. The HTTP layer (`routes::completions`) builds the context, calls
//! [`run`] and shapes the [`Outcome`] as OpenAI JSON or SSE (`routes::openai`).
//!
//! Money is handled by ownership: [`admit`] leaves a [`settle::Settlement`] in the
//! context that owns the admission permit. Whatever stage returns early, dropping it
//! settles the reservation (refunded when nothing was served, charged for what ran).
//! Stages that later issues add (request events, audit, response cache) go between
//! these, in the same shape.

pub mod admit;
pub mod escalate;
pub mod identify;
pub mod infer;
pub mod plan;
pub mod resolve;
pub mod screen_input;
pub mod screen_output;
pub mod settle;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue};

use crate::auth::Caller;
use crate::cascade::{Plan, Route};
use crate::config::Config;
use crate::edge::RequestId;
use crate::error::GatewayError;
use crate::events::{Event, RequestEvent, Spine, StageTiming, Trace};
use crate::inference::Announcement;
use crate::records::{Price, RouteDecision};
use crate::registry::Resolved;
use crate::validate::ValidRequest;
use crate::AppState;

pub use screen_output::{AnswerStream, Piece, WholeAnswer};

/// Which OpenAI endpoint the request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Chat,
    Text,
}

/// One variant that may answer: a route's tier, or the model asked for.
#[derive(Clone)]
pub struct Tier {
    pub variant: Resolved,
    pub price: Price,
}

/// What the request is expected to use, before the tokenizer has seen it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Estimate {
    pub prompt_tokens: f64,
    pub max_tokens: f64,
}

/// A key's budget for the period, and what it had spent before this request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub limit_usd: f64,
    pub spent_usd: f64,
}

/// How long each stage took, in order (for the request's event and debugging).
#[derive(Debug, Clone)]
pub struct Timings {
    last: Instant,
    pub stages: Vec<(&'static str, Duration)>,
}

impl Timings {
    fn new(started: Instant) -> Self {
        Self {
            last: started,
            stages: Vec::new(),
        }
    }

    /// Closes `stage`: the time since the previous mark.
    pub fn mark(&mut self, stage: &'static str) {
        let now = Instant::now();
        let took = now - self.last;
        metrics::histogram!("floodgate_pipeline_stage_seconds", "stage" => stage)
            .record(took.as_secs_f64());
        self.stages.push((stage, took));
        self.last = now;
    }
}

/// Everything one request holds while it passes the stages.
pub struct RequestContext {
    pub api: Api,
    /// The configuration as the request found it: every stage reads this one snapshot,
    /// so a reload that lands meanwhile applies from the next request.
    pub config: Arc<Config>,
    pub caller: Caller,
    pub ip: IpAddr,
    pub request_id: Option<RequestId>,
    /// The request's id in the event spine; the pipeline emits its event once an
    /// answer is handed over ([`settle::serve`]), the HTTP layer when it is refused.
    pub trace: Arc<Trace>,
    /// When the request arrived.
    pub started: Instant,
    pub request: ValidRequest,
    /// What `user` or key a variant choice sticks to (`identify`).
    pub sticky: String,
    /// The route asked for, if the model name is one (`resolve`).
    pub route: Option<Arc<Route>>,
    /// The route's tiers, or the one model, each resolved to a variant (`resolve`).
    pub tiers: Vec<Tier>,
    /// The first tier's engine has been told this request is coming (`resolve`);
    /// withdrawn at the hand-over.
    pub announced: Option<Announcement>,
    pub budget: Option<Budget>,
    pub estimate: Estimate,
    /// The admission permit and the record of what ran (`admit`, then `settle`).
    pub settlement: Option<settle::Settlement>,
    /// `x-ratelimit-*` headers from admission.
    pub rate_headers: Vec<(HeaderName, HeaderValue)>,
    /// The guards' notes so far (`input-flagged`, `output-redacted`, ...).
    pub guard_notes: Vec<&'static str>,
    /// The input guard's injection score, once it ran.
    pub input_score: Option<f32>,
    /// Which tier answers first and why (`plan`).
    pub plan: Plan,
    /// The route part of the decision record (`plan`, `escalate`).
    pub decision: Option<RouteDecision>,
    /// The tier whose answer the client gets.
    pub tier: usize,
    pub timings: Timings,
}

impl RequestContext {
    pub fn new(
        api: Api,
        config: Arc<Config>,
        caller: Caller,
        ip: IpAddr,
        request_id: Option<RequestId>,
        trace: Arc<Trace>,
        request: ValidRequest,
    ) -> Self {
        let started = trace.started;
        Self {
            api,
            config,
            caller,
            ip,
            request_id,
            trace,
            started,
            request,
            sticky: String::new(),
            route: None,
            tiers: Vec::new(),
            announced: None,
            budget: None,
            estimate: Estimate::default(),
            settlement: None,
            rate_headers: Vec::new(),
            guard_notes: Vec::new(),
            input_score: None,
            plan: Plan {
                tier: 0,
                post_check: false,
                reason: String::new(),
                pre_score: None,
            },
            decision: None,
            tier: 0,
            timings: Timings::new(started),
        }
    }

    /// The settlement `admit` left; an internal error if a stage runs before it.
    fn settlement(&mut self) -> Result<&mut settle::Settlement, GatewayError> {
        self.settlement
            .as_mut()
            .ok_or_else(|| GatewayError::Internal("request not admitted".into()))
    }
}

/// What the HTTP layer needs to answer.
pub struct Outcome {
    /// The variant whose answer the client gets.
    pub served: String,
    /// The route's name, when a route was asked for.
    pub route: Option<String>,
    pub escalated: bool,
    pub budget: Option<Budget>,
    /// `x-ratelimit-*` headers from admission.
    pub rate_headers: Vec<(HeaderName, HeaderValue)>,
    /// The input guard's notes; a whole answer adds the output guard's.
    pub guard_notes: Vec<&'static str>,
    pub body: Body,
}

/// The answer, whole or as a stream. One per request, moved once: the size difference
/// between the variants costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
pub enum Body {
    Whole(WholeAnswer),
    Stream(AnswerStream),
}

/// Runs the stages after validation, in order. On an error the context stays with the
/// caller, which records the refusal ([`refusal`]).
pub async fn run(state: &AppState, ctx: &mut RequestContext) -> Result<Outcome, GatewayError> {
    let ctx = &mut *ctx;
    identify::sticky(ctx);
    resolve::resolve(state, ctx)?;
    ctx.timings.mark("resolve");
    admit::admit(state, ctx).await?;
    ctx.timings.mark("admit");
    screen_input::screen_input(state, ctx).await?;
    ctx.timings.mark("screen_input");
    plan::plan(ctx).await?;
    ctx.timings.mark("plan");
    // Withdrawn just before the hand-over (tokenizing is all that is left).
    ctx.announced = None;
    let generation = escalate::answer(ctx).await?;
    ctx.timings.mark("infer");
    let served = ctx.tiers[ctx.tier].variant.id.clone();
    if let Some(r) = &ctx.route {
        metrics::counter!("floodgate_cascade_requests_total", "route" => r.config.name.clone(), "model" => served.clone()).increment(1);
    }
    let settlement = settle::serve(ctx, &generation)?;
    let rate_headers = std::mem::take(&mut ctx.rate_headers);
    let body = if ctx.request.stream {
        Body::Stream(screen_output::stream(state, ctx, generation, settlement))
    } else {
        Body::Whole(screen_output::whole(state, ctx, generation, settlement).await?)
    };
    Ok(Outcome {
        served,
        route: ctx.route.as_ref().map(|r| r.config.name.clone()),
        escalated: ctx.decision.as_ref().is_some_and(|d| d.escalated),
        budget: ctx.budget,
        rate_headers,
        guard_notes: std::mem::take(&mut ctx.guard_notes),
        body,
    })
}

/// The request's event as far as the pipeline got: who, what was asked, the route's
/// decision, the guards' notes and the stages' timings.
pub fn event(ctx: &RequestContext, spine: &Spine) -> RequestEvent {
    let mut e = ctx.trace.base(spine);
    e.requested = ctx.request.model.clone();
    e.stream = ctx.request.stream;
    e.route = ctx.decision.clone();
    e.guard = ctx.guard_notes.iter().map(|s| s.to_string()).collect();
    e.input_guard_score = ctx.input_score;
    e.timings.stages = ctx
        .timings
        .stages
        .iter()
        .map(|(stage, took)| StageTiming {
            stage: (*stage).to_string(),
            ms: took.as_secs_f64() * 1000.0,
        })
        .collect();
    if let Some(sampler) = &spine.prompts {
        let (text, turns) = ctx.request.prompt.user_text();
        e.drift = sampler.sample(&text, turns);
    }
    if spine.include_text() {
        e.prompt = Some(ctx.request.prompt.text_for_events());
    }
    e
}

/// The event of a request the pipeline refused with `error` (none if its answer was
/// already handed over: that event is the settlement's).
pub fn refusal(ctx: &RequestContext, spine: &Spine, error: &GatewayError) -> Option<Event> {
    if !ctx.trace.claim() {
        return None;
    }
    let mut e = event(ctx, spine);
    if let Some(s) = &ctx.settlement {
        e.runs = s.discarded().to_vec();
        e.cost_usd = e.runs.iter().map(|r| r.cost_usd).sum();
    }
    e.status = error.status().as_u16();
    e.outcome = "refused".into();
    e.error_code = Some(error.code().to_string());
    e.timings.total_ms = ctx.trace.elapsed_ms();
    Some(Event::request(
        ctx.trace.id.clone(),
        ctx.trace.time_ms,
        spine.origin.clone(),
        e,
    ))
}

#[cfg(test)]
mod tests;
